import type { Services } from '../services.ts';
import type { Api } from './server.ts';

export function dlqRoutes(_app: Api, _s: Services): void {}
