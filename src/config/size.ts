// Byte sizes as people write them in a config: 8388608, "8MiB", "5 MB", "512KiB".

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** What the JSON Schema advertises; parseByteSize is the authority (units are case-insensitive). */
export const BYTE_SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([kKmMgG][iI]?)?[bB]?$';

/** Bytes for "8MiB" / "5 MB" / "1024"; undefined when the text is not a size. KiB/MiB/GiB are binary, kB/MB/GB decimal. */
export function parseByteSize(text: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*([kmg]i?b?|b)?$/i.exec(text.trim());
  if (!match) return undefined;
  let unit = (match[2] ?? '').toLowerCase();
  // "8M" and "8Mi" are read like "8MB" and "8MiB".
  if (unit !== '' && unit !== 'b' && !unit.endsWith('b')) unit += 'b';
  const factor = UNITS[unit];
  if (factor === undefined) return undefined;
  return Math.round(Number(match[1]) * factor);
}

/** "8 MiB", "1.5 GiB", "300 B" — for messages. */
export function formatByteSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[i]}`;
}
