/** A user error in a command line: printed as one line without a stack, exit status 2. */
export class UsageError extends Error {}
