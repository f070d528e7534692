/** A probe option or sequence is invalid. The message names the bad value; the CLI exits with 2. */
export class ProbeUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProbeUsageError';
  }
}
