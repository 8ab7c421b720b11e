// Minimal acknowledging server: a Kinesis-compatible PutRecords sink for
// benchmarks, as cheap as possible so that it takes little CPU from what is
// measured (on 2 cores it shares the machine with the task worker).
//
// It answers every PutRecords with success for every entry (FailedRecordCount
// 0, one SequenceNumber/ShardId per entry, in order), counts requests,
// records and body bytes, and the most requests it had in flight at once. It
// does NOT check signatures, store data, or validate records: it measures a
// client, not a service. Since it stores nothing, the sequence numbers need
// not be fresh: the answer for n entries is built once (status line, headers
// and body in one buffer) and re-sent; entry i always gets the same sequence
// number. DescribeStreamSummary and ListShards get a one-shard answer so that
// clients can look at the "stream".
//
// Records are counted by the "PartitionKey": member names in the body (a key
// cannot contain a raw quote, so the text only occurs as a member name), in
// the socket's own buffers as they arrive, never joined or copied (a name cut
// in two by a read boundary is found in the last bytes of one read and the
// first of the next); with --parse the body is joined and parsed as JSON
// instead (slower, checks the JSON).
//
// HTTP/1.1 is spoken directly on the TCP socket (node:net), not through
// node:http, whose parser copies every body chunk and whose request/response
// objects and streams cost more than the counting: a request is a head
// (request line and headers up to an empty line) and a body of Content-Length
// bytes or in chunks (Transfer-Encoding: chunked); keep-alive and pipelined
// requests are answered in order; "Expect: 100-continue" gets its interim
// answer; "Connection: close" and HTTP/1.0 close after the answer. A head it
// cannot read gets 400 and the connection is closed.
//
//   node test/bench/ack_server.mjs [--port 0] [--host 127.0.0.1] [--parse]
// prints "listening http://HOST:PORT" on stdout once ready.
//   GET  /__stats  {requests, records, bytes, max_in_flight, by_target}
//   POST /__reset  zero the counters
// test/bench/ack_server_cpu.mjs checks this contract and measures the CPU the
// server needs per request. test/bench/ack_server.c is the same server in C
// (about 5x less CPU; no --parse): the benchmarks start that one unless given
// --ack-server node (or DMS_ACK_SERVER=node).

import net from 'node:net';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const port = Number(opt('port', '0'));
const host = opt('host', '127.0.0.1');
const parse = args.includes('--parse');

const MARK = Buffer.from('"PartitionKey":');
const KEEP = MARK.length - 1; /* bytes of a read's end that may hold the start of a cut name */
const scratch = Buffer.alloc(2 * KEEP); /* end of one read + start of the next */
const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

let stats;
const reset = () => {
  stats = { requests: 0, records: 0, bytes: 0, max_in_flight: 0, by_target: {} };
};
reset();
let inFlight = 0;

const REASON = { 200: 'OK', 400: 'Bad Request', 404: 'Not Found' };

/** response: a whole HTTP answer (status line, headers, body text) as one buffer. */
function response(status, text, type = 'application/x-amz-json-1.1') {
  const body = Buffer.from(text);
  const head = `HTTP/1.1 ${status} ${REASON[status]}\r\ncontent-type: ${type}\r\nx-amzn-RequestId: ack\r\n`
    + `content-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** answer: the success answer for n entries, built once per n (up to 500, Kinesis's limit). */
const answers = new Map();
function answer(n) {
  let a = answers.get(n);
  if (a) return a;
  const parts = new Array(n);
  for (let i = 0; i < n; i++) parts[i] = `{"SequenceNumber":"${10n ** 55n + BigInt(i)}","ShardId":"shardId-000000000000"}`;
  a = response(200, `{"FailedRecordCount":0,"Records":[${parts.join(',')}]}`);
  if (n <= 500) answers.set(n, a);
  return a;
}

const DESCRIBE = response(200, JSON.stringify({ StreamDescriptionSummary: { StreamName: 'ack', StreamStatus: 'ACTIVE', OpenShardCount: 1 } }));
const LIST_SHARDS = response(200, JSON.stringify({ Shards: [{ ShardId: 'shardId-000000000000' }] }));
const RESET_DONE = response(200, '{}', 'application/json');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const error = (type, message) => response(400, JSON.stringify({ __type: type, message }));

/** countIn: occurrences of MARK in buf[from, end). */
function countIn(buf, from, end) {
  let n = 0;
  const last = end - MARK.length;
  for (let at = buf.indexOf(MARK, from); at >= 0 && at <= last; at = buf.indexOf(MARK, at + MARK.length)) n++;
  return n;
}

/**
 * Counter of the member names in one body, fed piece by piece: tail keeps the
 * body's last KEEP bytes so far, and a name cut by a boundary is counted in
 * tail + the next piece's first KEEP bytes (such a name fits neither in the
 * tail nor in those first bytes, so nothing is counted twice).
 */
class BodyCounter {
  constructor() {
    this.tail = Buffer.allocUnsafe(KEEP);
    this.start();
  }

  /** start: a new body. */
  start() {
    this.records = 0;
    this.bytes = 0;
    this.tailLen = 0;
  }

  /** add: count the names in buf[from, end) and the ones that end in it. */
  add(buf, from, end) {
    const len = end - from;
    this.bytes += len;
    if (this.tailLen > 0) {
      const h = len < KEEP ? len : KEEP;
      this.tail.copy(scratch, 0, 0, this.tailLen);
      buf.copy(scratch, this.tailLen, from, from + h);
      this.records += countIn(scratch, 0, this.tailLen + h);
    }
    this.records += countIn(buf, from, end);
    if (len >= KEEP) {
      buf.copy(this.tail, 0, end - KEEP, end);
      this.tailLen = KEEP;
    } else {
      const keepOld = Math.min(this.tailLen, KEEP - len);
      this.tail.copy(this.tail, 0, this.tailLen - keepOld, this.tailLen);
      buf.copy(this.tail, keepOld, from, end);
      this.tailLen = keepOld + len;
    }
  }
}

// What a connection is reading.
const HEAD = 0; /* request line and headers */
const BODY = 1; /* Content-Length body: `left` bytes to go */
const CHUNK_SIZE = 2; /* a chunk-size line */
const CHUNK_DATA = 3; /* chunk data: `left` bytes to go */
const CHUNK_CRLF = 4; /* the CRLF after chunk data: `left` bytes to go */
const TRAILER = 5; /* trailer lines up to an empty one */

/** One client connection and the request it is reading. */
class Conn {
  constructor(socket) {
    this.socket = socket;
    this.state = HEAD;
    this.pending = null; /* an incomplete head or chunk-size/trailer line */
    this.counter = new BodyCounter();
    this.chunks = null; /* body pieces, when the body is kept (--parse, other operations) */
    this.left = 0;
    this.url = '';
    this.op = '';
    this.close = false;
    this.counted = false; /* PutRecords counted by member names */
    this.dead = false; /* answered 400, closing: reads are ignored */
  }

  /** data: consume one read of the socket. */
  data(c) {
    let off = 0;
    while (off < c.length && !this.dead) {
      if (this.state === HEAD || this.state === CHUNK_SIZE || this.state === TRAILER) {
        if (this.pending) {
          c = Buffer.concat([this.pending, c.subarray(off)]);
          off = 0;
          this.pending = null;
        }
        const head = this.state === HEAD;
        const end = head ? c.indexOf(HEAD_END, off) : c.indexOf(10, off);
        if (end < 0) {
          if (c.length - off > MAX_HEAD) return this.fail('head or line too long');
          this.pending = c.subarray(off);
          return;
        }
        const text = c.toString('latin1', off, head ? end : end + 1);
        off = head ? end + 4 : end + 1;
        if (head) this.head(text);
        else if (this.state === CHUNK_SIZE) this.chunkSize(text);
        else if (text.trim() === '') this.finish();
      } else {
        const n = Math.min(this.left, c.length - off);
        if (this.state !== CHUNK_CRLF) this.body(c, off, off + n);
        off += n;
        this.left -= n;
        if (this.left === 0) {
          if (this.state === BODY) this.finish();
          else if (this.state === CHUNK_DATA) {
            this.state = CHUNK_CRLF;
            this.left = 2;
          } else this.state = CHUNK_SIZE;
        }
      }
    }
  }

  /** head: a request's line and headers; sets up reading its body. */
  head(text) {
    const lines = text.split('\r\n');
    const m = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0]);
    if (!m) return this.fail(`not an HTTP/1.x request line: ${lines[0].slice(0, 80)}`);
    this.url = m[2];
    this.close = m[3] === '0';
    let length = 0;
    let chunked = false;
    let target = '';
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(':');
      if (colon <= 0) return this.fail(`bad header line: ${lines[i].slice(0, 80)}`);
      const name = lines[i].slice(0, colon).toLowerCase();
      const value = lines[i].slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = value.toLowerCase().includes('chunked');
      else if (name === 'x-amz-target') target = value;
      else if (name === 'connection') this.close = value.toLowerCase() === 'close' || (this.close && value.toLowerCase() !== 'keep-alive');
      else if (name === 'expect' && value.toLowerCase() === '100-continue') this.socket.write(CONTINUE);
    }
    if (!Number.isSafeInteger(length) || length < 0) return this.fail('bad content-length');
    this.op = target.slice(target.lastIndexOf('.') + 1);
    this.counted = false;
    this.chunks = null;
    if (!this.url.startsWith('/__')) {
      inFlight++;
      if (inFlight > stats.max_in_flight) stats.max_in_flight = inFlight;
      stats.by_target[this.op] = (stats.by_target[this.op] ?? 0) + 1;
      this.counted = this.op === 'PutRecords' && !parse;
      if (this.counted) this.counter.start();
      else this.chunks = [];
    }
    if (chunked) this.state = CHUNK_SIZE;
    else if (length > 0) {
      this.state = BODY;
      this.left = length;
    } else this.finish();
  }

  /** chunkSize: a chunk-size line; size 0 ends the body (trailer follows). */
  chunkSize(line) {
    const size = parseInt(line, 16);
    if (!Number.isSafeInteger(size) || size < 0) return this.fail(`bad chunk size line: ${line.slice(0, 40)}`);
    if (size === 0) this.state = TRAILER;
    else {
      this.state = CHUNK_DATA;
      this.left = size;
    }
  }

  /** body: buf[from, end) is body data. */
  body(buf, from, end) {
    if (this.counted) this.counter.add(buf, from, end);
    else if (this.chunks) this.chunks.push(buf.subarray(from, end));
  }

  /** finish: the request is complete: answer it. */
  finish() {
    this.state = HEAD;
    let out;
    if (this.url.startsWith('/__stats')) out = response(200, JSON.stringify(stats), 'application/json');
    else if (this.url.startsWith('/__reset')) {
      reset();
      out = RESET_DONE;
    } else {
      inFlight--;
      if (this.counted) {
        stats.requests++;
        stats.records += this.counter.records;
        stats.bytes += this.counter.bytes;
        out = answer(this.counter.records);
      } else out = this.answerParsed();
    }
    this.chunks = null;
    this.socket.write(out);
    if (this.close) this.socket.end();
  }

  /** answerParsed: the answer to a request whose body was kept (--parse, other operations). */
  answerParsed() {
    try {
      if (this.op === 'PutRecords') {
        const body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
        const n = JSON.parse(body).Records.length;
        stats.requests++;
        stats.records += n;
        stats.bytes += body.length;
        return answer(n);
      }
      if (this.op === 'DescribeStreamSummary') return DESCRIBE;
      if (this.op === 'ListShards') return LIST_SHARDS;
      return error('UnknownOperationException', `not supported by the ack server: ${this.op}`);
    } catch (err) {
      return error('SerializationException', String(err));
    }
  }

  /** fail: answer 400 and close the connection. */
  fail(why) {
    this.dead = true;
    this.socket.end(response(400, JSON.stringify({ __type: 'BadRequest', message: why }), 'application/json'));
  }
}

const sockets = new Set();
const server = net.createServer({ noDelay: true }, (socket) => {
  const conn = new Conn(socket);
  sockets.add(socket);
  socket.on('data', (c) => conn.data(c));
  socket.on('error', () => {});
  socket.on('close', () => {
    if (conn.state !== HEAD && !conn.url.startsWith('/__')) inFlight--; /* cut off mid-request */
    sockets.delete(socket);
  });
});
server.listen(port, host, () => {
  process.stdout.write(`listening http://${host}:${server.address().port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
});
