#!/usr/bin/python3
"""Generate AWS SigV4 test vectors with botocore, for test/integration/sigv4.test.mjs.

Run with Debian's interpreter and python3-botocore (1.29):

    /usr/bin/python3 test/unit/sigv4_vectors.py > vectors.json

(The pyenv python3 on these machines has its own, different botocore.)

Prints a JSON array.  Each vector has the request exactly as dms_stream sends
it (method, url with path and query already percent-encoded, headers, payload
in base64, service, region, credentials, signing time) and what botocore
computes for it: the headers it adds (Authorization, X-Amz-Date,
x-amz-content-sha256, X-Amz-Security-Token), plus its canonical request and
string to sign so that a mismatch can be diagnosed.

botocore signs S3 with S3SigV4Auth (path used as is, x-amz-content-sha256
always sent) and every other service with SigV4Auth (path normalised and
encoded again).  The clock is frozen by setting request.context['timestamp']
and calling the signer's steps one by one; as a cross-check each vector is
also signed through the public add_auth() with botocore's clock patched, and
both results must agree.

Fields of a vector:
  name, method, url, headers (object), payload_b64, service, region,
  access_key_id, secret_access_key, session_token (or null),
  time (ISO 8601, UTC), payload_hash (what to pass to dms_stream instead of
  the payload: null, a hex SHA-256 or "UNSIGNED-PAYLOAD"),
  object_key / encoded_key (S3 object vectors: the key and how it must be
  encoded in the path), expected (headers), canonical_request, string_to_sign.
"""

import base64
import datetime
import datetime as _dt
import hashlib
import json
import sys
from urllib.parse import quote

import botocore
import botocore.auth
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

AKID = 'AKIDEXAMPLE'
SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
S3_AKID = 'AKIAIOSFODNN7EXAMPLE'
S3_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
BED_AKID = 'S3RVER'
BED_SECRET = 'S3RVER'
TOKEN = ('IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def+ghi='
         'AQoDYXdzEJr//////////wEa+test/token==')

T_SUITE = '20150830T123600Z'
T_S3DOC = '20130524T000000Z'
T_LEAP = '20240229T235959Z'
T_NOW = '20261121T154500Z'

GET_VANILLA_SIGNATURE = '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'

# Names under which dms_stream returns the headers it adds.
OUR_NAMES = {
    'authorization': 'Authorization',
    'x-amz-date': 'X-Amz-Date',
    'x-amz-content-sha256': 'x-amz-content-sha256',
    'x-amz-security-token': 'X-Amz-Security-Token',
}


def s3_key_path(key):
    """Encode an object key as the S3 client puts it in the path.

    urllib's quote keeps A-Z a-z 0-9 _ . - ~ and the given safe '/', which
    is the AWS rule; botocore's S3 serializer encodes keys the same way.
    """
    return quote(key, safe='/')


def q(value):
    """Encode a query parameter name or value (the AWS rule, '/' encoded)."""
    return quote(value, safe='')


def iso(ts):
    """20150830T123600Z -> 2015-08-30T12:36:00Z."""
    d = datetime.datetime.strptime(ts, botocore.auth.SIGV4_TIMESTAMP)
    return d.strftime('%Y-%m-%dT%H:%M:%SZ')


def make_request(v):
    req = AWSRequest(method=v['method'], url=v['url'], data=v['payload'],
                     headers=dict(v['headers']))
    if v.get('unsigned'):
        if v['service'] == 's3':
            req.context['client_config'] = Config(
                s3={'payload_signing_enabled': False})
        else:
            req.context['payload_signing_enabled'] = False
    return req


def make_signer(v):
    creds = Credentials(v['access_key_id'], v['secret_access_key'],
                        v.get('session_token'))
    cls = S3SigV4Auth if v['service'] == 's3' else SigV4Auth
    return cls(creds, v['service'], v['region'])


def sign_stepwise(v):
    """Sign with the clock frozen through request.context['timestamp']."""
    signer = make_signer(v)
    req = make_request(v)
    req.context['timestamp'] = v['timestamp']
    signer._modify_request_before_signing(req)
    creq = signer.canonical_request(req)
    sts = signer.string_to_sign(req, creq)
    sig = signer.signature(sts, req)
    signer._inject_signature_to_request(req, sig)
    return req, creq, sts


class _FrozenDatetime(datetime.datetime):
    frozen = None

    @classmethod
    def utcnow(cls):
        return cls.frozen

    @classmethod
    def now(cls, tz=None):
        return cls.frozen if tz is None else cls.frozen.replace(tzinfo=tz)


class _DatetimeModule:
    """Stands in for the datetime module inside botocore.auth."""
    datetime = _FrozenDatetime
    timezone = _dt.timezone
    timedelta = _dt.timedelta


def sign_add_auth(v):
    """Sign through the public add_auth() with botocore's clock patched."""
    frozen = datetime.datetime.strptime(v['timestamp'],
                                        botocore.auth.SIGV4_TIMESTAMP)
    _FrozenDatetime.frozen = _FrozenDatetime(*frozen.timetuple()[:6])
    saved_module = botocore.auth.datetime
    saved_getter = getattr(botocore.auth, 'get_current_datetime', None)
    botocore.auth.datetime = _DatetimeModule
    if saved_getter is not None:    # newer botocore
        botocore.auth.get_current_datetime = lambda *a, **k: _FrozenDatetime.frozen
    try:
        req = make_request(v)
        make_signer(v).add_auth(req)
    finally:
        botocore.auth.datetime = saved_module
        if saved_getter is not None:
            botocore.auth.get_current_datetime = saved_getter
    return req


def added_headers(req, v):
    """The headers the signer added, under dms_stream's names."""
    out = {}
    for name, value in req.headers.items():
        lname = name.lower()
        if lname in OUR_NAMES:
            out[OUR_NAMES[lname]] = value
    return out


VECTORS = []


def vec(name, method, url, *, headers=None, payload=b'', service='s3',
        region='us-east-1', akid=AKID, secret=SECRET, token=None,
        timestamp=T_SUITE, unsigned=False, pass_hash=False, object_key=None):
    """Declare a vector.  pass_hash: give dms_stream the SHA-256 instead of
    the payload; unsigned: sign with UNSIGNED-PAYLOAD."""
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    v = {
        'name': name, 'method': method, 'url': url,
        'headers': headers or {}, 'payload': payload, 'service': service,
        'region': region, 'access_key_id': akid, 'secret_access_key': secret,
        'session_token': token, 'timestamp': timestamp, 'unsigned': unsigned,
    }
    if unsigned:
        v['payload_hash'] = 'UNSIGNED-PAYLOAD'
    elif pass_hash:
        v['payload_hash'] = hashlib.sha256(payload).hexdigest()
    else:
        v['payload_hash'] = None
    if object_key is not None:
        v['object_key'] = object_key
        v['encoded_key'] = s3_key_path(object_key)
    VECTORS.append(v)


# --- AWS SigV4 test suite (service "service", us-east-1, 20150830T123600Z)
SUITE = 'https://example.amazonaws.com'
vec('suite get-vanilla', 'GET', SUITE + '/',
    headers={'Host': 'example.amazonaws.com'}, service='service')
vec('suite get-vanilla-query-order-key-case', 'GET',
    SUITE + '/?Param2=value2&Param1=value1', service='service')
vec('suite get-vanilla-query-order-value', 'GET',
    SUITE + '/?Param1=value2&Param1=Value1', service='service')
vec('suite get-vanilla-query-unreserved', 'GET',
    SUITE + '/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
    '=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    service='service')
vec('suite get-utf8 (double-encoded path)', 'GET', SUITE + '/%E1%88%B4',
    service='service')
vec('suite get-space (double-encoded path)', 'GET',
    SUITE + '/example%20space/', service='service')
vec('suite normalize-path get-relative-relative', 'GET',
    SUITE + '/example1/example2/../..', service='service')
vec('suite normalize-path get-slashes', 'GET', SUITE + '//example//',
    service='service')
vec('suite normalize-path get-slash-dot-slash', 'GET', SUITE + '/./',
    service='service')
vec('suite get-header-value-trim', 'GET', SUITE + '/',
    headers={'My-Header1': ' value1', 'My-Header2': ' "a   b   c"'},
    service='service')
vec('suite get-header-value-multiline-ish collapse', 'GET', SUITE + '/',
    headers={'My-Header1': '  value1   with \t  runs  '}, service='service')
vec('suite post-x-www-form-urlencoded', 'POST', SUITE + '/',
    headers={'Content-Type': 'application/x-www-form-urlencoded'},
    payload='Param1=value1', service='service')
vec('suite post-sts-token (header)', 'POST', SUITE + '/', service='service',
    token=TOKEN)

# --- S3 documentation examples (examplebucket, 20130524T000000Z)
S3DOC = 'https://examplebucket.s3.amazonaws.com'
vec('s3 doc GET object range', 'GET', S3DOC + '/test.txt',
    headers={'Range': 'bytes=0-9'}, akid=S3_AKID, secret=S3_SECRET,
    timestamp=T_S3DOC, object_key='test.txt')
vec('s3 doc GET ?lifecycle', 'GET', S3DOC + '/?lifecycle', akid=S3_AKID,
    secret=S3_SECRET, timestamp=T_S3DOC)
vec('s3 doc GET bucket ?max-keys&prefix', 'GET', S3DOC + '/?max-keys=2&prefix=J',
    akid=S3_AKID, secret=S3_SECRET, timestamp=T_S3DOC)

# --- S3 objects with odd keys, path style against the test bed and AWS
S3BED = 'http://127.0.0.1:14580'
S3AWS = 'https://s3.eu-west-1.amazonaws.com'
ODD_KEYS = [
    'file name with spaces.txt',
    'a+b=c&d.txt',
    '100%.csv',
    'tilde~name_-.txt',
    'ünïcödé/日本語 ファイル.csv',
    'dir//double/slash.txt',
    'folder/trailing/',
    "weird!$'()*,;:@[]{}^`|\\\"<>#?key.txt",
    'dots/./and/../segments.txt',
    'px/we ird+key=1&x.txt',
]
for i, key in enumerate(ODD_KEYS):
    path = '/dms-bucket/' + s3_key_path(key)
    vec(f's3 GET odd key {key!r}', 'GET', S3BED + path, akid=BED_AKID,
        secret=BED_SECRET, timestamp=T_NOW, object_key=key)
    vec(f's3 PUT odd key {key!r}', 'PUT', S3AWS + path,
        headers={'Content-Type': 'text/csv', 'Content-Length': '10',
                 'x-amz-meta-source': 'dms_stream'},
        payload='a,b\n1,2\n3\n', region='eu-west-1', timestamp=T_LEAP,
        object_key=key)
    if i % 2 == 0:
        vec(f's3 HEAD odd key {key!r}', 'HEAD', S3BED + path, akid=BED_AKID,
            secret=BED_SECRET, timestamp=T_NOW, object_key=key)
    else:
        vec(f's3 DELETE odd key {key!r}', 'DELETE', S3AWS + path,
            region='eu-west-1', timestamp=T_NOW, object_key=key)

vec('s3 virtual-hosted PUT with Expect and User-Agent (not signed)', 'PUT',
    'https://dms-bucket.s3.ap-southeast-2.amazonaws.com/cdc/2026/11/21/part-0001.csv',
    headers={'Expect': '100-continue', 'User-Agent': 'dms_stream/0.1 libcurl',
             'Content-Type': 'text/csv'},
    payload='I,public,t,1\n', region='ap-southeast-2', timestamp=T_NOW,
    object_key='cdc/2026/11/21/part-0001.csv')
vec('s3 method given in lower case', 'delete', S3BED + '/dms-bucket/x.csv',
    akid=BED_AKID, secret=BED_SECRET, timestamp=T_NOW)

# --- ListObjectsV2
vec('s3 ListObjectsV2 plain', 'GET', S3BED + '/dms-bucket?list-type=2',
    akid=BED_AKID, secret=BED_SECRET, timestamp=T_NOW)
vec('s3 ListObjectsV2 prefix with spaces and slashes', 'GET',
    S3BED + '/dms-bucket?list-type=2&prefix=' + q('my schema/my table/')
    + '&delimiter=' + q('/') + '&max-keys=1000',
    akid=BED_AKID, secret=BED_SECRET, timestamp=T_NOW)
vec('s3 ListObjectsV2 continuation-token', 'GET',
    S3AWS + '/dms-bucket?list-type=2&continuation-token='
    + q('1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=')
    + '&prefix=' + q('cdc/public/orders/') + '&max-keys=500',
    region='eu-west-1', timestamp=T_LEAP)
vec('s3 ListObjectsV2 start-after (unsorted on the wire)', 'GET',
    S3AWS + '/dms-bucket?start-after=' + q('cdc/2026/11/21/LOAD00000001 +=&.csv')
    + '&prefix=' + q('cdc/') + '&list-type=2&encoding-type=url&fetch-owner=false',
    region='eu-west-1', timestamp=T_LEAP)
vec('s3 ListObjectsV2 unicode prefix', 'GET',
    S3BED + '/dms-bucket/?list-type=2&prefix=' + q('données/é~'),
    akid=BED_AKID, secret=BED_SECRET, timestamp=T_NOW)

# --- multipart upload
MPU = S3AWS + '/dms-bucket/' + s3_key_path('parquet/public.orders/LOAD 0001.parquet')
UPLOAD_ID = 'VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA+/=~-_.'
vec('s3 multipart create ?uploads', 'POST', MPU + '?uploads',
    headers={'Content-Type': 'application/octet-stream'}, region='eu-west-1',
    timestamp=T_NOW)
vec('s3 multipart upload part', 'PUT',
    MPU + '?partNumber=1&uploadId=' + q(UPLOAD_ID),
    headers={'Content-Length': '16'}, payload=bytes(range(16)),
    region='eu-west-1', timestamp=T_NOW)
vec('s3 multipart upload part, hash passed', 'PUT',
    MPU + '?uploadId=' + q(UPLOAD_ID) + '&partNumber=10000',
    payload=b'\x00\xff' * 4096, region='eu-west-1', timestamp=T_NOW,
    pass_hash=True)
COMPLETE = ('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>'
            '<ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag></Part>'
            '</CompleteMultipartUpload>')
vec('s3 multipart complete', 'POST', MPU + '?uploadId=' + q(UPLOAD_ID),
    headers={'Content-Type': 'application/xml'}, payload=COMPLETE,
    region='eu-west-1', timestamp=T_NOW)
vec('s3 multipart abort', 'DELETE', MPU + '?uploadId=' + q(UPLOAD_ID),
    region='eu-west-1', timestamp=T_NOW)

# --- payload variants, tokens, ports
vec('s3 PUT UNSIGNED-PAYLOAD over https', 'PUT',
    S3AWS + '/dms-bucket/big%20file.parquet',
    headers={'Content-Type': 'application/octet-stream'},
    payload=b'PAR1' * 100, region='eu-west-1', timestamp=T_NOW, unsigned=True)
vec('s3 GET with session token', 'GET', S3AWS + '/dms-bucket/a.csv',
    region='eu-west-1', timestamp=T_NOW, token=TOKEN)
vec('s3 PUT with session token, hash passed', 'PUT',
    S3BED + '/dms-bucket/t%2Bk.csv', payload='x,y\n', akid=BED_AKID,
    secret=BED_SECRET, timestamp=T_NOW, token=TOKEN, pass_hash=True)
vec('s3 https non-default port', 'GET',
    'https://minio.internal:9000/dms-bucket/k.csv', timestamp=T_NOW)
vec('s3 explicit default port https :443 (omitted in host)', 'GET',
    'https://s3.us-east-1.amazonaws.com:443/dms-bucket/k.csv', timestamp=T_NOW)
vec('s3 explicit default port http :80 (omitted in host)', 'GET',
    'http://s3.local:80/dms-bucket/k.csv', timestamp=T_NOW)
vec('s3 upper-case host name', 'GET',
    'http://S3.Example.COM:8080/dms-bucket/k.csv', timestamp=T_NOW)
vec('s3 IPv6 host with port', 'GET', 'http://[::1]:14580/dms-bucket/k.csv',
    akid=BED_AKID, secret=BED_SECRET, timestamp=T_NOW)
vec('s3 header values with runs of spaces', 'PUT', S3BED + '/dms-bucket/h.csv',
    headers={'x-amz-meta-note': '  several   spaces\there  ',
             'Content-Type': ' text/csv ;  charset=utf-8 '},
    payload='1\n', akid=BED_AKID, secret=BED_SECRET, timestamp=T_NOW)

# --- Kinesis (JSON 1.1 protocol: POST / with X-Amz-Target)
KIN_HEADERS = {'Content-Type': 'application/x-amz-json-1.1'}


def kin(op, body, url='https://kinesis.us-east-1.amazonaws.com/', **kw):
    h = dict(KIN_HEADERS)
    h['X-Amz-Target'] = 'Kinesis_20131202.' + op
    h.update(kw.pop('extra_headers', {}))
    return dict(headers=h, payload=json.dumps(body, separators=(',', ':')),
                service='kinesis', **kw)


PUT_RECORDS = {'StreamName': 'dms-stream', 'Records': [
    {'Data': base64.b64encode(b'{"data":{"id":1},"metadata":{}}').decode(),
     'PartitionKey': 'public.orders.1'},
    {'Data': base64.b64encode('{"data":{"name":"ü"}}'.encode()).decode(),
     'PartitionKey': 'public.orders.2',
     'ExplicitHashKey': '340282366920938463463374607431768211455'}]}
vec('kinesis PutRecords', 'POST', 'https://kinesis.us-east-1.amazonaws.com/',
    **kin('PutRecords', PUT_RECORDS))
vec('kinesis PutRecords eu-central-1 test bed port', 'POST',
    'http://127.0.0.1:14567/',
    **kin('PutRecords', PUT_RECORDS, region='eu-central-1', timestamp=T_NOW))
vec('kinesis PutRecords with session token and User-Agent', 'POST',
    'https://kinesis.ap-southeast-2.amazonaws.com/',
    **kin('PutRecords', PUT_RECORDS, region='ap-southeast-2', token=TOKEN,
          timestamp=T_LEAP,
          extra_headers={'User-Agent': 'dms_stream/0.1',
                         'X-Amzn-Trace-Id': 'Root=1-abc'}))
vec('kinesis DescribeStreamSummary', 'POST',
    'https://kinesis.eu-west-1.amazonaws.com/',
    **kin('DescribeStreamSummary', {'StreamName': 'dms-stream'},
          region='eu-west-1', timestamp=T_NOW))
vec('kinesis ListShards', 'POST', 'https://kinesis.us-east-1.amazonaws.com/',
    **kin('ListShards', {'StreamName': 'dms-stream', 'MaxResults': 1000},
          timestamp=T_NOW))
vec('kinesis GetShardIterator', 'POST', 'http://localhost:4567/',
    **kin('GetShardIterator', {'StreamName': 'dms-stream',
                               'ShardId': 'shardId-000000000000',
                               'ShardIteratorType': 'TRIM_HORIZON'},
          timestamp=T_NOW))
vec('kinesis GetRecords', 'POST', 'https://kinesis.us-east-1.amazonaws.com/',
    **kin('GetRecords', {'ShardIterator': 'AAAAAAAAAAH/abc+def==', 'Limit': 100},
          timestamp=T_NOW))
vec('kinesis PutRecords, hash passed', 'POST',
    'https://kinesis.us-east-1.amazonaws.com/',
    **kin('PutRecords', PUT_RECORDS, timestamp=T_NOW), pass_hash=True)
vec('kinesis UNSIGNED-PAYLOAD (x-amz-content-sha256 sent)', 'POST',
    'https://kinesis.us-east-1.amazonaws.com/',
    **kin('ListShards', {'StreamName': 'dms-stream'}, timestamp=T_NOW),
    unsigned=True)
vec('kinesis header values with runs of spaces', 'POST',
    'https://kinesis.us-east-1.amazonaws.com/',
    **kin('ListShards', {'StreamName': 'dms-stream'}, timestamp=T_NOW,
          extra_headers={'X-Custom': '   a    b  \t c   '}))

# --- STS (query protocol, form POST)
WEB_ID_FORM = ('Action=AssumeRoleWithWebIdentity&Version=2011-06-15'
               '&RoleArn=' + q('arn:aws:iam::123456789012:role/dms-stream')
               + '&RoleSessionName=dms_stream-1234'
               + '&WebIdentityToken=' + q('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln+/='))
FORM = {'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'}
vec('sts AssumeRoleWithWebIdentity global', 'POST', 'https://sts.amazonaws.com/',
    headers=FORM, payload=WEB_ID_FORM, service='sts', timestamp=T_NOW)
vec('sts AssumeRoleWithWebIdentity regional', 'POST',
    'https://sts.eu-west-1.amazonaws.com/', headers=FORM, payload=WEB_ID_FORM,
    service='sts', region='eu-west-1', timestamp=T_LEAP)
vec('sts GetCallerIdentity query string', 'GET',
    'https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15',
    service='sts', token=TOKEN, timestamp=T_NOW)


def main():
    out = []
    for v in VECTORS:
        req, creq, sts = sign_stepwise(v)
        expected = added_headers(req, v)
        check = added_headers(sign_add_auth(v), v)
        if check != expected:
            sys.exit(f'{v["name"]}: add_auth and stepwise signing disagree:\n'
                     f'{check}\n{expected}')
        if v['name'] == 'suite get-vanilla' and \
                not expected['Authorization'].endswith(
                    'Signature=' + GET_VANILLA_SIGNATURE):
            sys.exit('get-vanilla does not give the AWS suite signature: '
                     + expected['Authorization'])
        out.append({
            'name': v['name'],
            'method': v['method'],
            'url': v['url'],
            'headers': v['headers'],
            'payload_b64': base64.b64encode(v['payload']).decode('ascii'),
            'service': v['service'],
            'region': v['region'],
            'access_key_id': v['access_key_id'],
            'secret_access_key': v['secret_access_key'],
            'session_token': v['session_token'],
            'time': iso(v['timestamp']),
            'payload_hash': v['payload_hash'],
            **({'object_key': v['object_key'], 'encoded_key': v['encoded_key']}
               if 'object_key' in v else {}),
            'signer': type(make_signer(v)).__name__,
            'expected': expected,
            'canonical_request': creq,
            'string_to_sign': sts,
        })
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write('\n')
    print(f'{len(out)} vectors, botocore {botocore.__version__}',
          file=sys.stderr)


if __name__ == '__main__':
    main()
