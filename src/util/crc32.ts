/**
 * CRC-32 (the IEEE polynomial of zip and PNG), incremental. It guards files we write against
 * silent corruption and mix-ups, not against tampering: a cryptographic hash would need the
 * asynchronous WebCrypto API in the browser, and a checksum only has to notice accidents.
 */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Extend a running CRC-32 (start from 0) with `bytes`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
