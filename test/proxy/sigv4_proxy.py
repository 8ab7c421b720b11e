#!/usr/bin/python3
"""SigV4-verifying, fault-injecting HTTP reverse proxy for the dms_stream test bed.

One proxy sits in front of each AWS emulator (s3rver for S3, kinesalite for
Kinesis; with --service sts, a test's fake STS: SigV4Auth, XML errors). The emulators do not check signatures, so this proxy does, with
botocore (Debian's python3-botocore, run this file with /usr/bin/python3):
an implementation independent of the extension's C signer.

For every request it
  1. parses the Authorization header (AWS4-HMAC-SHA256 only; unsigned and
     presigned-query requests are rejected),
  2. checks the access key, the credential scope (date, region, service) and
     the clock skew (15 minutes),
  3. rebuilds a botocore AWSRequest from the method, the URL as received, the
     headers named in SignedHeaders and the body, and lets botocore compute the
     canonical request, string to sign and signature (S3SigV4Auth for s3:
     single-encoded path and x-amz-content-sha256; SigV4Auth otherwise),
  4. checks x-amz-content-sha256 (unless UNSIGNED-PAYLOAD) against the SHA-256
     of the body actually received,
and answers rejects the way AWS does (S3 XML errors, Kinesis JSON errors).
Verified requests are forwarded to the upstream on a keep-alive connection and
the upstream's status, headers and body are passed back.

Faults are injected at run time through an admin API on the same port, under
/__proxy/ (S3 bucket names cannot contain '_', so it cannot collide):
  POST /__proxy/faults  JSON body (replaces the current fault set, see FAULT_KEYS)
  GET  /__proxy/faults  current fault set and remaining count
  GET  /__proxy/stats   JSON counters
  GET  /__proxy/requests?since=SEQ&path=RE&op=RE&stream=RE
                        journal of the last requests (what happened to each)
  POST /__proxy/reset   clear faults, counters and journal, release hung requests

Usage:
  sigv4_proxy.py --service s3 --listen 127.0.0.1:14580 \
      --upstream http://127.0.0.1:14568 [--upstream-access-key S3RVER] \
      [--region us-east-1] [--credential AKID:SECRET[:TOKEN] ...] [--log FILE]
"""

import argparse
import base64
import collections
import datetime
import hashlib
import http.client
import http.server
import json
import os
import random
import re
import select
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

import botocore
from botocore.auth import SigV4Auth, S3SigV4Auth, SIGV4_TIMESTAMP
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

# The bed's credentials, key id -> (secret, session token or None). s3rver
# only knows S3RVER/S3RVER; the second pair is the one of AWS's SigV4 test
# suite; the third is temporary credentials whose requests must carry
# X-Amz-Security-Token (for credential-chain tests). Secrets are never logged.
DEFAULT_CREDENTIALS = {
    'S3RVER': ('S3RVER', None),
    'AKIDEXAMPLE': ('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', None),
    'ASIABEDSESSIONKEY0': ('bedSessionSecret/0000000000000000000000', 'bed-session-token-0'),
}
MAX_SKEW = datetime.timedelta(minutes=15)
UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
SPOOL_MAX_MEMORY = 16 * 1024 * 1024   # request bodies above this go to a temp file
COPY_CHUNK = 256 * 1024
HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
              'proxy-connection', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade',
              'expect'}
JOURNAL_SIZE = 5000
STREAM_RE = re.compile(rb'"Stream(?:Name|ARN)"\s*:\s*"([^"]+)"')
# upstream response headers not copied into a response the proxy writes itself
NOT_RELAYED = HOP_BY_HOP | {'content-length', 'date', 'server'}
AUTH_RE = re.compile(
    r'^AWS4-HMAC-SHA256\s+'
    r'Credential=(?P<cred>[^,\s]+)\s*,\s*'
    r'SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*'
    r'Signature=(?P<sig>[0-9a-fA-F]+)\s*$')
FAULT_KEYS = {
    'http_fail_rate': float,   # fraction of matched requests answered with fail_status
    'fail_status': int,        # 500 (default) or 503 (or any 4xx/5xx)
    'throttle_rate': float,    # Kinesis 400 ProvisionedThroughputExceededException, S3 503 SlowDown
    'put_records_fail_rate': float,  # per PutRecords entry: fail it, forward only the others
    'put_records_error_codes': list,  # codes to pick from (default both below)
    'reset_rate': float,       # drop the connection without a response (TCP RST)
    'reset_after_forward': bool,  # ...but only after the upstream handled the request
    'delay_ms': int,           # sleep before handling each matched request
    'hang': (bool, float),     # true (or a rate): never answer until client leaves or reset
    'answer': dict,            # {"status","body","content_type"}: answer matched requests with this
                               # instead of forwarding them (emulate an API the upstream lacks)
    'match': dict,             # {"target","method","path","stream": regex}: restrict faults
    'count': int,              # inject exactly this many faults, then none
    'seed': int,               # seed of the fault RNG (deterministic runs)
}
# STS's names for the proxy's (Kinesis-style) reject codes
STS_CODES = {'UnrecognizedClientException': 'InvalidClientTokenId',
             'InvalidSignatureException': 'SignatureDoesNotMatch'}
PUT_RECORDS_CODES = ['ProvisionedThroughputExceededException', 'InternalFailure']


class Reject(Exception):
    """A request refused before it reaches the upstream (AWS-shaped error)."""

    def __init__(self, status, code, message, reason=None, extra=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.reason = reason or message     # short text for the log and stats
        self.extra = extra or {}            # S3: extra XML elements (StringToSign, ...)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class VerifyingSigner:
    """Mixin over botocore's signers: sign exactly the headers the client named.

    botocore's headers_to_sign() drops user-agent, expect and x-amzn-trace-id
    (its own blacklist), but AWS accepts any header the client chose to sign,
    so the verifier canonicalizes every header it was given. Everything else
    (canonical headers, query, path, string to sign, key derivation) is
    botocore's own code."""

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            header_map[name.lower()] = value
        return header_map


class VerifyingSigV4(VerifyingSigner, SigV4Auth):
    pass


class VerifyingS3SigV4(VerifyingSigner, S3SigV4Auth):
    pass


class State:
    """Fault configuration and counters, shared by all handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset_event = threading.Event()   # set to release hung requests
        self.clear()

    def clear(self):
        with self.lock:
            self.faults = {}
            self.count_left = None
            self.rng = random.Random()
            self.match = {}
            self.counters = collections.Counter()
            self.rejected = collections.Counter()
            self.fault_counts = collections.Counter()
            self.operations = collections.Counter()
            self.statuses = collections.Counter()
            self.last_rejections = collections.deque(maxlen=20)
            self.journal = collections.deque(maxlen=JOURNAL_SIZE)
            self.seq = 0
            # release the requests hanging on the previous event
            self.reset_event.set()
            self.reset_event = threading.Event()

    def set_faults(self, spec):
        if not isinstance(spec, dict):
            raise ValueError('faults must be a JSON object')
        clean = {}
        for key, value in spec.items():
            if key not in FAULT_KEYS:
                raise ValueError('unknown fault key %r (known: %s)' % (key, ', '.join(sorted(FAULT_KEYS))))
            kind = FAULT_KEYS[key]
            if key == 'hang':
                if not isinstance(value, (bool, int, float)):
                    raise ValueError('hang must be true/false or a rate')
                value = 1.0 if value is True else float(value)
            elif kind is float:
                value = float(value)
                if not 0.0 <= value <= 1.0:
                    raise ValueError('%s must be within [0, 1]' % key)
            elif kind is int:
                value = int(value)
            elif not isinstance(value, kind):
                raise ValueError('%s must be a %s' % (key, kind.__name__))
            clean[key] = value
        match = {}
        for k, pattern in clean.get('match', {}).items():
            if k not in ('target', 'method', 'path', 'stream'):
                raise ValueError('match keys are target, method, path, stream')
            match[k] = re.compile(pattern)
        if 'answer' in clean:
            a = clean['answer']
            if not isinstance(a.get('status', 200), int) or not isinstance(a.get('body', ''), str) \
                    or not isinstance(a.get('content_type', 'application/xml'), str) \
                    or set(a) - {'status', 'body', 'content_type'}:
                raise ValueError('answer takes status (int), body and content_type (strings)')
        if 'fail_status' in clean and not 400 <= clean['fail_status'] <= 599:
            raise ValueError('fail_status must be 4xx or 5xx')
        for code in clean.get('put_records_error_codes', []):
            if not isinstance(code, str):
                raise ValueError('put_records_error_codes must be strings')
        with self.lock:
            self.faults = clean
            self.match = match
            self.count_left = clean.get('count')
            self.rng = random.Random(clean.get('seed'))
        return clean

    def describe(self):
        with self.lock:
            return {'faults': self.faults, 'count_left': self.count_left}

    def matches(self, method, path, target, stream):
        with self.lock:
            match = self.match
        if 'method' in match and not match['method'].search(method):
            return False
        if 'path' in match and not match['path'].search(path):
            return False
        if 'target' in match and not match['target'].search(target or ''):
            return False
        if 'stream' in match and not match['stream'].search(stream or ''):
            return False
        return True

    def record(self, entry):
        """Append one request to the journal; returns its sequence number."""
        with self.lock:
            self.seq += 1
            entry['seq'] = self.seq
            self.journal.append(entry)
            return self.seq

    def requests(self, since=0, path=None, op=None, stream=None):
        with self.lock:
            entries = [e for e in self.journal if e['seq'] > since]
            seq = self.seq
        if path:
            entries = [e for e in entries if re.search(path, e['path'])]
        if op:
            entries = [e for e in entries if re.search(op, e['op'])]
        if stream:
            entries = [e for e in entries if re.search(stream, e['stream'] or '')]
        return {'seq': seq, 'requests': entries}

    def roll(self, key):
        """True if the fault `key` (a rate) fires now; consumes one `count`."""
        with self.lock:
            rate = self.faults.get(key)
            if not rate:
                return False
            if self.count_left is not None and self.count_left <= 0:
                return False
            if self.rng.random() >= rate:
                return False
            if self.count_left is not None:
                self.count_left -= 1
            return True

    def take(self, key):
        """Consume one `count` for a non-random fault (delay); False if exhausted."""
        with self.lock:
            if not self.faults.get(key):
                return False
            if self.count_left is not None:
                if self.count_left <= 0:
                    return False
                self.count_left -= 1
            return True

    def bump(self, counter, key, n=1):
        with self.lock:
            counter[key] += n

    def stats(self):
        with self.lock:
            return {
                'seq': self.seq,
                'requests': self.counters['requests'],
                'verified': self.counters['verified'],
                'forwarded': self.counters['forwarded'],
                'upstream_errors': self.counters['upstream_errors'],
                'rejected_total': sum(self.rejected.values()),
                'rejected': dict(self.rejected),
                'faults_total': sum(self.fault_counts.values()),
                'faults': dict(self.fault_counts),
                'put_records': {
                    'requests': self.counters['put_records_requests'],
                    'entries': self.counters['put_records_entries'],
                    'entries_failed': self.counters['put_records_entries_failed'],
                    'entries_forwarded': self.counters['put_records_entries_forwarded'],
                },
                'operations': dict(self.operations),
                'statuses': {str(k): v for k, v in self.statuses.items()},
                'last_rejections': list(self.last_rejections),
                'faults_config': self.faults,
                'count_left': self.count_left,
            }


class ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address, config):
        self.config = config
        self.state = State()
        super().__init__(address, ProxyHandler)


class NoDelayHTTPConnection(http.client.HTTPConnection):
    """Upstream connection without Nagle: headers and body go out as separate
    writes, and Nagle plus delayed ACKs would add 40 ms to each request."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'dms-sigv4-proxy'
    sys_version = ''
    timeout = 300            # idle keep-alive client connections
    _upstream = None         # one keep-alive upstream connection per client connection
    entry = None             # journal entry of the request being handled

    # -- plumbing ----------------------------------------------------------

    def setup(self):
        super().setup()
        # responses are written as headers, then body: no Nagle delay between
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        pass   # no access log: one line per rejected request / fault instead

    def log(self, text):
        self.server.config['log'](text)

    @property
    def service(self):
        return self.server.config['service']

    @property
    def state(self):
        return self.server.state

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    def handle_expect_100(self):
        """Check what can be checked from the headers before saying 100 Continue,
        as AWS does: a rejected upload never sends its body."""
        if self.path.startswith('/__proxy/'):
            return super().handle_expect_100()
        try:
            self.parse_auth(self.header_pairs())
        except Reject as rej:
            self.new_entry()
            self.close_connection = True
            try:
                self.send_reject(rej)
            finally:
                self.state.record(self.entry)
                self.entry = None
            return False
        return super().handle_expect_100()

    def header_pairs(self):
        """All received headers as (lower-case name, value) pairs, in order."""
        return [(k.lower(), v) for k, v in self.headers.items()]

    def read_body(self):
        """Read the request body (Content-Length or chunked) into a spooled file.

        Returns (file, length, sha256 hex digest)."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY)
        digest = hashlib.sha256()
        total = 0
        te = (self.headers.get('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError('client closed inside a chunked body')
                size = int(line.split(b';', 1)[0].strip() or b'0', 16)
                if size == 0:
                    # trailers until an empty line
                    while self.rfile.readline(65537) not in (b'\r\n', b'\n', b''):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, COPY_CHUNK))
                    if not data:
                        raise ConnectionError('client closed inside a chunk')
                    spool.write(data)
                    digest.update(data)
                    left -= len(data)
                total += size
                self.rfile.readline(3)   # CRLF after the chunk
        else:
            left = int(self.headers.get('Content-Length') or 0)
            while left:
                data = self.rfile.read(min(left, COPY_CHUNK))
                if not data:
                    raise ConnectionError('client closed inside the body')
                spool.write(data)
                digest.update(data)
                left -= len(data)
                total += len(data)
        spool.seek(0)
        return spool, total, digest.hexdigest()

    # -- dispatch ------------------------------------------------------------

    def new_entry(self):
        """Count the request and start its journal entry (see /__proxy/requests)."""
        state = self.state
        state.bump(state.counters, 'requests')
        target = self.headers.get('X-Amz-Target')
        op = target.rsplit('.', 1)[-1] if target else self.command
        state.bump(state.operations, op)
        self.entry = {'time': now_utc().strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z',
                      'method': self.command, 'path': self.path[:300], 'op': op, 'stream': None,
                      'status': None, 'forwarded': False, 'rejected': None, 'faults': []}
        return target

    def dispatch(self):
        self.entry = None
        if self.path.startswith('/__proxy/'):
            return self.admin()
        state = self.state
        target = self.new_entry()
        try:
            try:
                # Read the whole body first: answering before it is consumed
                # would make the kernel reset the connection under the client.
                body, length, body_sha = self.read_body()
            except (ConnectionError, ValueError) as exc:
                self.close_connection = True
                self.entry['faults'].append('client_error')
                self.log('client error %s %s: %s' % (self.command, self.path, exc))
                return
            try:
                if self.service == 'kinesis' and length:
                    m = STREAM_RE.search(body.read())
                    body.seek(0)
                    if m:
                        self.entry['stream'] = m.group(1).decode('utf-8', 'replace').rsplit('/', 1)[-1]
                try:
                    pairs = self.header_pairs()
                    auth = self.parse_auth(pairs)
                    self.verify(auth, pairs, body, body_sha)
                except Reject as rej:
                    return self.send_reject(rej)
                state.bump(state.counters, 'verified')
                self.faults_then_forward(target, body, length)
            finally:
                body.close()
        finally:
            state.record(self.entry)

    # -- signature verification -------------------------------------------------

    def parse_auth(self, pairs):
        """Header-level checks; returns a dict describing the Authorization."""
        svc = self.service
        cfg = self.server.config
        headers = dict(pairs)    # last value wins; enough for these lookups
        authz = headers.get('authorization')
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if not authz:
            if 'X-Amz-Signature' in query or 'X-Amz-Algorithm' in query:
                raise Reject(*self.err_unsupported('presigned (query) authentication is not supported by the test proxy'))
            if svc == 's3':
                raise Reject(403, 'AccessDenied', 'Access Denied', reason='unsigned request')
            raise Reject(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token',
                         reason='unsigned request')
        m = AUTH_RE.match(authz.strip())
        if not m:
            if svc == 's3':
                raise Reject(400, 'AuthorizationHeaderMalformed',
                             'The authorization header is malformed; only AWS4-HMAC-SHA256 '
                             'Credential=..., SignedHeaders=..., Signature=... is accepted.',
                             reason='malformed Authorization header')
            raise Reject(400, 'IncompleteSignatureException',
                         "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                         "parameters, algorithm AWS4-HMAC-SHA256.", reason='malformed Authorization header')
        cred = m.group('cred').split('/')
        if len(cred) != 5 or cred[4] != 'aws4_request':
            raise self.malformed('credential must be KEY/DATE/REGION/SERVICE/aws4_request, got %d parts' % len(cred))
        key_id, scope_date, scope_region, scope_service = cred[:4]
        signed = m.group('signed')
        signed_list = signed.split(';')
        if signed_list != sorted(signed_list) or any(h != h.lower() or not h for h in signed_list):
            raise self.malformed('SignedHeaders must be lower-case, sorted and ;-separated: %s' % signed)
        if 'host' not in signed_list:
            raise self.malformed("SignedHeaders must include 'host'")
        if key_id not in cfg['credentials']:
            if svc == 's3':
                raise Reject(403, 'InvalidAccessKeyId',
                             'The AWS Access Key Id you provided does not exist in our records.',
                             reason='unknown access key %s' % key_id, extra={'AWSAccessKeyId': key_id})
            raise Reject(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.',
                         reason='unknown access key %s' % key_id)
        # session token: required (and exact) for temporary keys, refused otherwise
        token = cfg['credentials'][key_id][1]
        sent_token = headers.get('x-amz-security-token')
        if sent_token != token:
            why = ('no X-Amz-Security-Token for temporary key %s' % key_id if sent_token is None else
                   'X-Amz-Security-Token %s for key %s' % ('not expected' if token is None else 'wrong', key_id))
            if svc == 's3':
                if sent_token is None:
                    raise Reject(403, 'InvalidAccessKeyId',
                                 'The AWS Access Key Id you provided does not exist in our records.',
                                 reason=why, extra={'AWSAccessKeyId': key_id})
                raise Reject(400, 'InvalidToken', 'The provided token is malformed or otherwise invalid.', reason=why)
            raise Reject(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.',
                         reason=why)
        # request time: X-Amz-Date, or the Date header
        stamp = headers.get('x-amz-date')
        if stamp:
            try:
                when = datetime.datetime.strptime(stamp, SIGV4_TIMESTAMP)
            except ValueError:
                raise self.malformed('X-Amz-Date %r is not YYYYMMDDTHHMMSSZ' % stamp)
        elif headers.get('date'):
            try:
                when = datetime.datetime.strptime(headers['date'], '%a, %d %b %Y %H:%M:%S GMT')
            except ValueError:
                raise self.malformed('Date header %r is not RFC 1123' % headers['date'])
            stamp = when.strftime(SIGV4_TIMESTAMP)
        else:
            if svc == 's3':
                raise Reject(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header',
                             reason='no X-Amz-Date or Date header')
            raise Reject(400, 'IncompleteSignatureException',
                         'Authorization header requires existence of either a \'X-Amz-Date\' or a \'Date\' header.',
                         reason='no X-Amz-Date or Date header')
        now = now_utc()
        if abs(now - when) > MAX_SKEW:
            if svc == 's3':
                raise Reject(403, 'RequestTimeTooSkewed',
                             'The difference between the request time and the current time is too large.',
                             reason='clock skew %ds' % (when - now).total_seconds(),
                             extra={'RequestTime': stamp, 'ServerTime': now.strftime('%Y-%m-%dT%H:%M:%SZ'),
                                    'MaxAllowedSkewMilliseconds': '900000'})
            raise Reject(400, 'InvalidSignatureException',
                         'Signature expired: %s is now earlier than %s (%s - 15 min.)' % (
                             stamp, (now - MAX_SKEW).strftime(SIGV4_TIMESTAMP), now.strftime(SIGV4_TIMESTAMP))
                         if when < now else
                         'Signature not yet current: %s is still later than %s (%s + 15 min.)' % (
                             stamp, (now + MAX_SKEW).strftime(SIGV4_TIMESTAMP), now.strftime(SIGV4_TIMESTAMP)),
                         reason='clock skew %ds' % (when - now).total_seconds())
        # credential scope
        if scope_date != stamp[:8]:
            raise self.malformed('Invalid credential date "%s". This date is not the same as X-Amz-Date: "%s".'
                                 % (scope_date, stamp[:8]), scope=True)
        if scope_region != cfg['region']:
            raise self.malformed("the region '%s' is wrong; expecting '%s'" % (scope_region, cfg['region']),
                                 scope=True)
        if scope_service != self.service:
            raise self.malformed("Credential should be scoped to correct service: '%s'." % self.service,
                                 scope=True)
        # every header named in SignedHeaders must be present
        present = {k for k, _ in pairs}
        missing = [h for h in signed_list if h not in present]
        if missing:
            raise self.mismatch_simple('signed header(s) not in the request: %s' % ','.join(missing))
        if svc == 's3':
            unsigned_amz = sorted(k for k in present if k.startswith('x-amz-') and k not in signed_list)
            if unsigned_amz:
                raise Reject(403, 'AccessDenied', 'There were headers present in the request which were not signed',
                             reason='x-amz-* headers not signed: %s' % ','.join(unsigned_amz),
                             extra={'HeadersNotSigned': ', '.join(unsigned_amz)})
            content_sha = headers.get('x-amz-content-sha256')
            if not content_sha:
                raise Reject(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256',
                             reason='no x-amz-content-sha256')
            if content_sha.startswith('STREAMING-'):
                raise Reject(*self.err_unsupported(
                    'x-amz-content-sha256 %s (aws-chunked) is not supported by the test proxy' % content_sha))
        return {'key_id': key_id, 'stamp': stamp, 'signed': signed_list, 'signature': m.group('sig').lower()}

    def err_unsupported(self, message):
        if self.service == 's3':
            return (501, 'NotImplemented', message)
        return (400, 'IncompleteSignatureException', message)

    def malformed(self, message, scope=False):
        if self.service == 's3':
            return Reject(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed; ' + message,
                          reason=message)
        return Reject(400, 'InvalidSignatureException' if scope else 'IncompleteSignatureException', message,
                      reason=message)

    def mismatch_simple(self, reason):
        if self.service == 's3':
            return Reject(403, 'SignatureDoesNotMatch',
                          'The request signature we calculated does not match the signature you provided. '
                          'Check your key and signing method.', reason=reason)
        return Reject(400, 'InvalidSignatureException',
                      'The request signature we calculated does not match the signature you provided. '
                      'Check your AWS Secret Access Key and signing method.', reason=reason)

    def verify(self, auth, pairs, body, body_sha):
        cfg = self.server.config
        content_sha = None
        for k, v in pairs:
            if k == 'x-amz-content-sha256':
                content_sha = v.strip()
        if content_sha is not None and content_sha != UNSIGNED_PAYLOAD and content_sha.lower() != body_sha:
            if self.service == 's3':
                raise Reject(400, 'XAmzContentSHA256Mismatch',
                             "The provided 'x-amz-content-sha256' header does not match what was computed.",
                             reason='x-amz-content-sha256 does not match the body',
                             extra={'ClientComputedContentSHA256': content_sha,
                                    'S3ComputedContentSHA256': body_sha})
            raise self.mismatch_simple('x-amz-content-sha256 does not match the body')

        # Rebuild the request botocore would have signed: the URL as received
        # (path exactly as sent; for s3 botocore uses it single-encoded, other
        # services get botocore's normalization and double encoding), the query
        # decoded into params (botocore re-encodes them per the SigV4 rules, as
        # the service does), only the signed headers, and the body.
        split = urllib.parse.urlsplit(self.path)
        host = self.headers.get('Host', '')
        url = 'http://%s%s' % (host, split.path or '/')
        params = []
        if split.query:
            for piece in split.query.split('&'):
                k, _, v = piece.partition('=')
                params.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
        request = AWSRequest(method=self.command, url=url)
        request.params = params
        for k, v in pairs:
            if k in auth['signed']:
                request.headers[k] = v          # HTTPHeaders keeps repeated headers
        if content_sha is None:
            # botocore then hashes the body itself (the usual case for Kinesis)
            body.seek(0)
            request.data = body.read()
            body.seek(0)
        request.context['timestamp'] = auth['stamp']
        creds = Credentials(auth['key_id'], *cfg['credentials'][auth['key_id']])
        signer_cls = VerifyingS3SigV4 if self.service == 's3' else VerifyingSigV4
        signer = signer_cls(creds, self.service, cfg['region'])
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        computed_signed = signer.signed_headers(signer.headers_to_sign(request))
        if computed_signed != ';'.join(auth['signed']):
            raise self.mismatch_simple('SignedHeaders %s, computed %s' % (';'.join(auth['signed']), computed_signed))
        if expected != auth['signature']:
            if self.service == 's3':
                raise Reject(403, 'SignatureDoesNotMatch',
                             'The request signature we calculated does not match the signature you provided. '
                             'Check your key and signing method.',
                             reason='signature mismatch (key %s)' % auth['key_id'],
                             extra={'AWSAccessKeyId': auth['key_id'], 'StringToSign': string_to_sign,
                                    'SignatureProvided': auth['signature'], 'CanonicalRequest': canonical})
            raise Reject(400, 'InvalidSignatureException',
                         'The request signature we calculated does not match the signature you provided. '
                         'Check your AWS Secret Access Key and signing method. Consult the service documentation '
                         "for details.\n\nThe Canonical String for this request should have been\n'%s'\n\n"
                         "The String-to-Sign should have been\n'%s'\n" % (canonical, string_to_sign),
                         reason='signature mismatch (key %s)' % auth['key_id'])

    # -- responses ---------------------------------------------------------------

    def send_reject(self, rej):
        state = self.state
        state.bump(state.rejected, rej.code)
        if self.entry is not None:
            self.entry['rejected'] = rej.code
        with state.lock:
            state.last_rejections.append({
                'time': now_utc().strftime('%Y-%m-%dT%H:%M:%SZ'), 'status': rej.status, 'code': rej.code,
                'method': self.command, 'path': self.path[:200], 'reason': rej.reason[:500]})
        self.log('REJECT %s %s %s -> %d %s: %s' % (self.service, self.command, self.path[:200], rej.status,
                                                   rej.code, rej.reason[:300].replace('\n', ' ')))
        self.send_error_shaped(rej.status, rej.code, rej.message, rej.extra)

    def send_error_shaped(self, status, code, message, extra=None):
        """Write an error the way the AWS service would."""
        request_id = str(uuid.uuid4())
        if self.service == 's3':
            rid = uuid.uuid4().hex[:16].upper()
            parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                     % (xml_escape(code), xml_escape(message))]
            for k, v in (extra or {}).items():
                parts.append('<%s>%s</%s>' % (k, xml_escape(v), k))
            parts.append('<RequestId>%s</RequestId><HostId>%s</HostId></Error>'
                         % (rid, base64.b64encode(os.urandom(24)).decode()))
            body = ''.join(parts).encode()
            headers = [('Content-Type', 'application/xml'), ('x-amz-request-id', rid),
                       ('x-amz-id-2', base64.b64encode(os.urandom(24)).decode())]
        elif self.service == 'sts':
            # STS (query protocol): XML ErrorResponse, STS's names for the codes
            code = STS_CODES.get(code, code)
            body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                    '<Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>'
                    % (xml_escape(code), xml_escape(message), request_id)).encode()
            headers = [('Content-Type', 'text/xml'), ('x-amzn-RequestId', request_id)]
        else:
            body = json.dumps({'__type': code, 'message': message}).encode()
            headers = [('Content-Type', 'application/x-amz-json-1.1'), ('x-amzn-RequestId', request_id),
                       ('x-amzn-ErrorType', code), ('x-amz-id-2', base64.b64encode(os.urandom(24)).decode())]
        self.send_simple(status, headers, body)

    def send_simple(self, status, headers, body):
        self.state.bump(self.state.statuses, status)
        if self.entry is not None:
            self.entry['status'] = status
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)) if self.command != 'HEAD' else '0')
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status, obj):
        body = (json.dumps(obj, indent=1, sort_keys=True) + '\n').encode()
        self.send_simple(status, [('Content-Type', 'application/json')], body)

    def reset_connection(self):
        """Drop the client connection with a TCP RST and no response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            # the buffered reader holds a reference to the socket: close both
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def finish(self):
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    # -- faults -------------------------------------------------------------------

    def faults_then_forward(self, target, body, length):
        state = self.state
        svc = self.service
        faults_on = state.faults and state.matches(self.command, self.path, target, self.entry['stream'])
        if not faults_on:
            return self.forward(body, length)

        faults = state.faults
        if faults.get('delay_ms') and state.take('delay_ms'):
            self.fault('delay', '%d ms' % faults['delay_ms'])
            time.sleep(faults['delay_ms'] / 1000.0)
        if state.roll('hang'):
            self.fault('hang')
            return self.hang()
        if faults.get('answer') and state.take('answer'):
            a = faults['answer']
            self.fault('answer', str(a.get('status', 200)))
            return self.send_simple(a.get('status', 200),
                                    [('Content-Type', a.get('content_type', 'application/xml')),
                                     ('x-amz-request-id', uuid.uuid4().hex[:16].upper())],
                                    a.get('body', '').encode())
        reset = state.roll('reset_rate')
        if reset and not faults.get('reset_after_forward'):
            self.fault('reset')
            return self.reset_connection()
        if not reset:
            if state.roll('throttle_rate'):
                self.fault('throttle')
                if svc == 's3':
                    return self.send_error_shaped(503, 'SlowDown', 'Please reduce your request rate.')
                return self.send_error_shaped(400, 'ProvisionedThroughputExceededException',
                                              'Rate exceeded for shard shardId-000000000000 in stream under '
                                              'account 000000000000.')
            if state.roll('http_fail_rate'):
                status = faults.get('fail_status', 500)
                self.fault('http_fail', str(status))
                return self.send_error_shaped(status, *fail_code(svc, status))
        if (svc == 'kinesis' and target and target.endswith('.PutRecords')
                and faults.get('put_records_fail_rate')):
            return self.forward_put_records(body, length, reset)
        if reset:
            self.fault('reset_after_forward')
            self.forward(body, length, discard=True)
            return self.reset_connection()
        return self.forward(body, length)

    def fault(self, kind, detail=''):
        self.state.bump(self.state.fault_counts, kind)
        self.entry['faults'].append(kind)
        self.log('FAULT %s %s %s %s' % (kind, self.command, self.path[:120],
                                        self.headers.get('X-Amz-Target', '') + (' ' + detail if detail else '')))

    def hang(self):
        """Never answer: wait until the client goes away or faults are reset, then drop."""
        event = self.state.reset_event
        sock = self.connection
        while not event.is_set():
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        break        # client closed
                except OSError:
                    break
        self.reset_connection()

    def forward_put_records(self, body, length, reset):
        """PutRecords with a random subset of entries failed by the proxy."""
        state = self.state
        raw = body.read()
        try:
            request = json.loads(raw)
            entries = request['Records']
            assert isinstance(entries, list)
        except Exception:
            body.seek(0)
            return self.forward(body, length)   # not JSON (CBOR?) or invalid: let upstream judge
        if not 1 <= len(entries) <= 500:
            body.seek(0)
            return self.forward(body, length)   # keep the upstream's whole-request validation
        codes = state.faults.get('put_records_error_codes') or PUT_RECORDS_CODES
        failed = {}
        for i in range(len(entries)):
            if state.roll('put_records_fail_rate'):
                with state.lock:
                    failed[i] = state.rng.choice(codes)
        state.bump(state.counters, 'put_records_requests')
        state.bump(state.counters, 'put_records_entries', len(entries))
        state.bump(state.counters, 'put_records_entries_failed', len(failed))
        if failed:
            state.bump(state.fault_counts, 'put_records', len(failed))
            self.entry['faults'].append('put_records')
            self.entry['put_records_failed'] = len(failed)
            self.log('FAULT put_records %d of %d entries failed' % (len(failed), len(entries)))
        kept = [e for i, e in enumerate(entries) if i not in failed]
        state.bump(state.counters, 'put_records_entries_forwarded', len(kept))
        stream = request.get('StreamName') or (request.get('StreamARN') or '').rsplit('/', 1)[-1]
        if kept:
            request['Records'] = kept
            sub = json.dumps(request).encode()
            status, headers, up_body = self.forward_buffered(sub)
            if status is None:
                return
            if status != 200:
                return self.send_upstream_buffered(status, headers, up_body)
            try:
                result = json.loads(up_body)
                results = iter(result['Records'])
            except Exception:
                return self.send_upstream_buffered(status, headers, up_body)
            upstream_failed = result.get('FailedRecordCount', 0)
        else:
            result, results, upstream_failed, headers = {}, iter(()), 0, [
                ('Content-Type', 'application/x-amz-json-1.1'), ('x-amzn-RequestId', str(uuid.uuid4()))]
        merged = []
        for i in range(len(entries)):
            if i in failed:
                code = failed[i]
                if code == 'ProvisionedThroughputExceededException':
                    msg = 'Rate exceeded for shard shardId-000000000000 in stream %s under account 000000000000.' % stream
                else:
                    msg = 'Internal service failure.'
                merged.append({'ErrorCode': code, 'ErrorMessage': msg})
            else:
                merged.append(next(results))
        out = dict(result)
        out['FailedRecordCount'] = upstream_failed + len(failed)
        out['Records'] = merged
        data = json.dumps(out).encode()
        if reset:
            self.fault('reset_after_forward')
            return self.reset_connection()
        keep = [(k, v) for k, v in headers if k.lower() not in NOT_RELAYED and k.lower() != 'content-encoding']
        self.send_simple(200, keep, data)

    # -- upstream -----------------------------------------------------------------

    def upstream(self, fresh=False):
        if fresh and self._upstream is not None:
            self._upstream.close()
            self._upstream = None
        if self._upstream is None:
            cfg = self.server.config
            self._upstream = NoDelayHTTPConnection(cfg['upstream_host'], cfg['upstream_port'],
                                                   timeout=cfg['upstream_timeout'], blocksize=COPY_CHUNK)
        return self._upstream

    def upstream_headers(self, length):
        out = []
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == 'content-length':
                continue
            if lk == 'authorization' and self.server.config['upstream_access_key']:
                # s3rver only knows S3RVER: present the verified request as its key
                v = re.sub(r'Credential=[^/]+/', 'Credential=%s/' % self.server.config['upstream_access_key'], v)
            out.append((k, v))
        out.append(('Content-Length', str(length)))
        return out

    def send_upstream(self, body, length):
        """Send the request upstream and return the response (retry once on a stale keep-alive)."""
        headers = self.upstream_headers(length)
        for attempt in (0, 1):
            conn = self.upstream(fresh=attempt == 1)
            try:
                body.seek(0)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders()
                while True:
                    chunk = body.read(COPY_CHUNK)
                    if not chunk:
                        break
                    conn.send(chunk)
                response = conn.getresponse()
                self.state.bump(self.state.counters, 'forwarded')
                self.entry['forwarded'] = True
                return response
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt == 1:
                    raise

    def forward(self, body, length, discard=False):
        """Forward the verified request and stream the upstream's answer back."""
        try:
            response = self.send_upstream(body, length)
        except (OSError, http.client.HTTPException) as exc:
            return self.upstream_failed(exc)
        if discard:
            response.read()
            return
        try:
            self.relay(response)
        finally:
            if response.will_close:
                self.upstream(fresh=True)

    def forward_buffered(self, data):
        """Forward a rewritten body; returns (status, headers, body) or (None,..) after answering 502."""
        import io
        try:
            response = self.send_upstream(io.BytesIO(data), len(data))
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.upstream_failed(exc)
            return None, None, None
        if response.will_close:
            self.upstream(fresh=True)
        return response.status, response.getheaders(), body

    def send_upstream_buffered(self, status, headers, body):
        keep = [(k, v) for k, v in headers if k.lower() not in NOT_RELAYED]
        self.send_simple(status, keep, body)

    def upstream_failed(self, exc):
        self.state.bump(self.state.counters, 'upstream_errors')
        self.log('UPSTREAM error %s %s: %r' % (self.command, self.path[:120], exc))
        self.upstream(fresh=True)
        self.close_connection = True
        code = 'InternalError' if self.service == 's3' else 'InternalFailure'
        self.send_error_shaped(502, code, 'test proxy: upstream unreachable: %s' % exc)

    def relay(self, response):
        """Pass status, headers and body back; stream the body."""
        self.state.bump(self.state.statuses, response.status)
        self.entry['status'] = response.status
        self.send_response_only(response.status, response.reason)
        self.send_header('Date', self.date_time_string())
        length = response.getheader('Content-Length')
        no_body = self.command == 'HEAD' or response.status in (204, 304) or 100 <= response.status < 200
        for k, v in response.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == 'date':
                continue
            if lk == 'content-length' and not no_body:
                continue
            self.send_header(k, v)
        chunked = False
        if not no_body:
            if length is not None:
                self.send_header('Content-Length', length)
            elif self.request_version == 'HTTP/1.1':
                chunked = True
                self.send_header('Transfer-Encoding', 'chunked')
            else:
                self.close_connection = True
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        if no_body:
            response.read()
            self.wfile.flush()
            return
        while True:
            # read(n), not read1(n): read1 never marks the response finished,
            # and the keep-alive connection would then refuse the next request
            chunk = response.read(COPY_CHUNK)
            if not chunk:
                break
            if chunked:
                self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
        if chunked:
            self.wfile.write(b'0\r\n\r\n')
        self.wfile.flush()

    # -- admin API -------------------------------------------------------------------

    def admin(self):
        state = self.state
        path = urllib.parse.urlsplit(self.path).path
        try:
            body, _, _ = self.read_body()
            raw = body.read()
            body.close()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        try:
            if path == '/__proxy/stats' and self.command == 'GET':
                return self.send_json(200, state.stats())
            if path == '/__proxy/requests' and self.command == 'GET':
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                return self.send_json(200, state.requests(int(q.get('since', 0)), q.get('path'),
                                                          q.get('op'), q.get('stream')))
            if path == '/__proxy/faults' and self.command == 'GET':
                return self.send_json(200, state.describe())
            if path == '/__proxy/faults' and self.command in ('POST', 'PUT'):
                spec = json.loads(raw or b'{}')
                clean = state.set_faults(spec)
                self.log('ADMIN faults set: %s' % json.dumps(clean, sort_keys=True))
                return self.send_json(200, state.describe())
            if path == '/__proxy/reset' and self.command == 'POST':
                state.clear()
                self.log('ADMIN reset')
                return self.send_json(200, {'ok': True})
            if path == '/__proxy/health':
                return self.send_json(200, {'ok': True, 'service': self.service})
            return self.send_json(404, {'error': 'unknown admin path or method: %s %s' % (self.command, path)})
        except (ValueError, re.error) as exc:
            return self.send_json(400, {'error': str(exc)})


def fail_code(service, status):
    """(code, message) of a service-shaped error for an injected HTTP failure."""
    if service == 's3':
        if status == 503:
            return 'SlowDown', 'Please reduce your request rate.'
        if status >= 500:
            return 'InternalError', 'We encountered an internal error. Please try again.'
        return 'InvalidRequest', 'Injected failure.'
    if status == 503:
        return 'ServiceUnavailable', 'Service Unavailable'
    if status >= 500:
        return 'InternalFailure', 'Internal service failure.'
    if status == 400:
        return 'ProvisionedThroughputExceededException', 'Rate exceeded for shard.'
    return 'ValidationException', 'Injected failure.'


def xml_escape(text):
    return (str(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace('"', '&quot;').replace('\n', '&#10;'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--service', required=True, choices=['s3', 'kinesis', 'sts'])
    ap.add_argument('--listen', default='127.0.0.1:0', help='HOST:PORT to listen on')
    ap.add_argument('--upstream', required=True, help='http://HOST:PORT of the emulator')
    ap.add_argument('--region', default='us-east-1')
    ap.add_argument('--credential', action='append', default=[],
                    help='ACCESS_KEY:SECRET[:SESSION_TOKEN] (repeatable; default: the bed\'s '
                         'S3RVER, AKIDEXAMPLE and ASIABEDSESSIONKEY0)')
    ap.add_argument('--upstream-access-key', default='',
                    help='rewrite the access key id of forwarded requests (s3rver only accepts S3RVER)')
    ap.add_argument('--upstream-timeout', type=float, default=120.0)
    ap.add_argument('--log', default='-', help='log file (default stderr)')
    args = ap.parse_args()

    creds = dict(DEFAULT_CREDENTIALS)
    if args.credential:
        creds = {}
        for c in args.credential:
            parts = c.split(':', 2)
            if len(parts) < 2:
                ap.error('--credential must be ACCESS_KEY:SECRET[:SESSION_TOKEN]')
            creds[parts[0]] = (parts[1], parts[2] if len(parts) == 3 else None)
    up = urllib.parse.urlsplit(args.upstream)
    if up.scheme != 'http' or not up.hostname:
        ap.error('--upstream must be http://HOST:PORT')
    host, _, port = args.listen.rpartition(':')

    log_file = sys.stderr if args.log == '-' else open(args.log, 'a', buffering=1)
    log_lock = threading.Lock()

    def log(text):
        with log_lock:
            log_file.write('%s [%s] %s\n' % (now_utc().strftime('%Y-%m-%d %H:%M:%S'), args.service, text))
            log_file.flush()

    config = {
        'service': args.service, 'region': args.region, 'credentials': creds,
        'upstream_host': up.hostname, 'upstream_port': up.port or 80,
        'upstream_access_key': args.upstream_access_key, 'upstream_timeout': args.upstream_timeout,
        'log': log,
    }
    server = ProxyServer((host or '127.0.0.1', int(port)), config)
    log('listening on %s:%d -> %s (botocore %s, keys: %s)' % (
        server.server_address[0], server.server_address[1], args.upstream, botocore.__version__,
        ','.join(sorted(creds))))
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == '__main__':
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
