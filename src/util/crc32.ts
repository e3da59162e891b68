/**
 * CRC-32 checksums, incremental: the IEEE polynomial of zip and PNG ({@link crc32}), and
 * Castagnoli's ({@link crc32c}), which TensorBoard's record framing uses. They guard files we
 * write against silent corruption and mix-ups, not against tampering: a cryptographic hash would
 * need the asynchronous WebCrypto API in the browser, and a checksum only has to notice accidents.
 */
function table(polynomial: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? polynomial ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}
const IEEE = table(0xedb88320);
const CASTAGNOLI = table(0x82f63b78);

function update(t: Uint32Array, bytes: Uint8Array, crc: number): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Extend a running CRC-32 (IEEE; start from 0) with `bytes`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  return update(IEEE, bytes, crc);
}

/** Extend a running CRC-32C (Castagnoli; start from 0) with `bytes`. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  return update(CASTAGNOLI, bytes, crc);
}
