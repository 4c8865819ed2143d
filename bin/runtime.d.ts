// Types of runtime.js (plain JavaScript, imported by TypeScript benchmarks and tests).
export declare const NODE_FLAGS: readonly string[];
export declare const RUNTIME_ENV: Readonly<Record<'UV_THREADPOOL_SIZE' | 'MALLOC_ARENA_MAX' | 'NODE_COMPILE_CACHE', string>>;
export declare function missingFlags(execArgv: readonly string[], nodeOptions?: string): string[];
export declare function runtimeEnv<E extends Record<string, string | undefined>>(env: E): E & Record<string, string | undefined>;
export declare function serverCommand(script: string, args?: readonly string[], env?: Record<string, string | undefined>): { args: string[]; env: Record<string, string | undefined> };
