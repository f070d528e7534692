/** Small text helpers shared by the probe's modules. */

/**
 * Bytes as one printable line: printable ASCII kept, CR/LF/tab as `\r` `\n` `\t`, anything else
 * as `\xNN`; cut at `max` bytes with an ellipsis.
 */
export function printable(bytes: Buffer, max = 120): string {
  let out = '';
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b === 0x0d) out += '\\r';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return bytes.length > max ? `${out}…` : out;
}

/** `printable` in double quotes, for messages. */
export function quoted(bytes: Buffer, max = 120): string {
  return `"${printable(bytes, max)}"`;
}

/** `1 step` / `2 steps`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
