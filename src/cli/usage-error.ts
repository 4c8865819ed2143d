/** A command line the CLI cannot act on: reported in one line with the command's usage, exit code 2. */
export class UsageError extends Error {
  /** The command whose usage to print (e.g. "keys create"); undefined: the overview. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}
