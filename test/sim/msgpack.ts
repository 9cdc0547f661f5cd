// A minimal MessagePack encoder. @msgpack/msgpack 3.x encodes a JS `Map` as an empty map, but the
// service's pushes are maps with *integer* keys (protocol 1.7), so `Map<number, …>` must become a
// msgpack map whose keys are ints. Plain objects still encode with string keys.

class Writer {
  private buf = Buffer.alloc(256);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.pos);
    this.pos += 1;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
  }
  i64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }
  /** A string's UTF-8 bytes, `len` of them (Buffer.byteLength), without an intermediate copy. */
  utf8(s: string, len: number): void {
    this.ensure(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  result(): Uint8Array {
    return new Uint8Array(this.buf.subarray(0, this.pos));
  }
}

function header(w: Writer, n: number, fix: number, fixMax: number, c16: number, c32: number): void {
  if (n < fixMax) w.u8(fix + n);
  else if (n < 0x10000) {
    w.u8(c16);
    w.u16(n);
  } else {
    w.u8(c32);
    w.u32(n);
  }
}

/** A type byte followed by a big-endian length or value of `bytes` bytes. */
function tagged(w: Writer, code: number, bytes: 1 | 2 | 4, v: number): void {
  w.u8(code);
  if (bytes === 1) w.u8(v);
  else if (bytes === 2) w.u16(v);
  else w.u32(v);
}

function int(w: Writer, v: number): void {
  if (v >= 0) {
    if (v < 0x80) w.u8(v);
    else if (v < 0x100) tagged(w, 0xcc, 1, v);
    else if (v < 0x10000) tagged(w, 0xcd, 2, v);
    else if (v < 0x100000000) tagged(w, 0xce, 4, v);
    else {
      w.u8(0xcf);
      w.u64(BigInt(v));
    }
  } else if (v >= -32) w.u8(0x100 + v);
  else if (v >= -0x80) tagged(w, 0xd0, 1, 0x100 + v);
  else if (v >= -0x8000) tagged(w, 0xd1, 2, 0x10000 + v);
  else if (v >= -0x80000000) tagged(w, 0xd2, 4, 0x100000000 + v);
  else {
    w.u8(0xd3);
    w.i64(BigInt(v));
  }
}

function str(w: Writer, s: string): void {
  const n = Buffer.byteLength(s, 'utf8');
  if (n < 32) w.u8(0xa0 + n);
  else if (n < 0x100) tagged(w, 0xd9, 1, n);
  else if (n < 0x10000) tagged(w, 0xda, 2, n);
  else tagged(w, 0xdb, 4, n);
  w.utf8(s, n);
}

function value(w: Writer, v: unknown, depth: number): void {
  if (depth > 100) throw new Error('msgpack: too deep');
  if (v === null || v === undefined) w.u8(0xc0);
  else if (typeof v === 'boolean') w.u8(v ? 0xc3 : 0xc2);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) int(w, v);
    else {
      w.u8(0xcb);
      w.f64(v);
    }
  } else if (typeof v === 'bigint') {
    w.u8(0xcf);
    w.u64(v);
  } else if (typeof v === 'string') str(w, v);
  else if (v instanceof Uint8Array) {
    if (v.length < 0x100) tagged(w, 0xc4, 1, v.length);
    else if (v.length < 0x10000) tagged(w, 0xc5, 2, v.length);
    else tagged(w, 0xc6, 4, v.length);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    header(w, v.length, 0x90, 16, 0xdc, 0xdd);
    for (const x of v) value(w, x, depth + 1);
  } else if (v instanceof Map) {
    header(w, v.size, 0x80, 16, 0xde, 0xdf);
    for (const [k, x] of v) {
      value(w, k, depth + 1);
      value(w, x, depth + 1);
    }
  } else if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    header(w, entries.length, 0x80, 16, 0xde, 0xdf);
    for (const [k, x] of entries) {
      str(w, k);
      value(w, x, depth + 1);
    }
  } else throw new Error(`msgpack: cannot encode ${typeof v}`);
}

export function encodeMsgpack(v: unknown): Uint8Array {
  const w = new Writer();
  value(w, v, 0);
  return w.result();
}
