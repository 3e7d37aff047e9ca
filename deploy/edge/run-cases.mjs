// Runs deploy/edge/verify-link.js the way CloudFront Functions runs it, for
// tests: reads {settings, cases} as JSON on stdin, prints one JSON result per
// case on stdout.
//
//   settings: {secret, keys, skew}  as the stack's SigningSecret, SigningKeys
//                                   and SigningSkewSecs parameters
//   cases:    [{name, target}]      target: the request's path and query
//   result:   {name, status, body, uri, query}
//             status "pass" when the request goes on (query: what is left of
//             it, [[name, value], ...]), else the generated answer's status
//
// The code runs in a context of its own with only what cloudfront-js-2.0
// offers it here: require('crypto') (node's, the same createHmac and
// base64url digest), Buffer and console. Any other require fails. Its SETTINGS
// line is replaced as template.yaml's Fn::Sub fills it (base64 of the secrets).
// The event is shaped as in the CloudFront Functions event structure:
// request.uri is the path as received, request.querystring has one field per
// parameter name, {value}, with a multiValue array when a name repeats. Values
// are passed as received, not percent-decoded.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import vm from 'node:vm';

const SOURCE = fileURLToPath(new URL('./verify-link.js', import.meta.url));
const SETTINGS_LINE = /^var SETTINGS = \{.*\};$/m;

const input = JSON.parse(readFileSync(0, 'utf8'));
const b64 = (text) => Buffer.from(text || '', 'utf8').toString('base64');
const settings = input.settings;
let source = readFileSync(SOURCE, 'utf8');
if ((source.match(new RegExp(SETTINGS_LINE.source, 'gm')) || []).length !== 1) {
  throw new Error(`${SOURCE} must have exactly one SETTINGS line`);
}
source = source.replace(
  SETTINGS_LINE,
  `var SETTINGS = { secret: '${b64(settings.secret)}', keys: '${b64(settings.keys)}', ` +
    `skew: '${Number(settings.skew ?? 30)}' };`,
);

const sandbox = {
  require(name) {
    if (name !== 'crypto') {
      throw new Error(`cloudfront-js-2.0 has no module ${JSON.stringify(name)}`);
    }
    return crypto;
  },
  Buffer,
  console,
};
vm.createContext(sandbox);
vm.runInContext(source, sandbox, { filename: 'verify-link.js' });
if (typeof sandbox.handler !== 'function') {
  throw new Error('verify-link.js defines no handler(event)');
}

// CloudFront's querystring object for a raw query.
function querystring(raw) {
  const query = {};
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const at = part.indexOf('=');
    const name = at < 0 ? part : part.slice(0, at);
    const value = at < 0 ? '' : part.slice(at + 1);
    const field = query[name];
    if (!field) {
      query[name] = { value };
    } else {
      field.multiValue ??= [{ value: field.value }];
      field.multiValue.push({ value });
    }
  }
  return query;
}

function pairs(query) {
  const out = [];
  for (const [name, field] of Object.entries(query)) {
    for (const { value } of field.multiValue ?? [field]) out.push([name, value]);
  }
  return out;
}

const results = input.cases.map(({ name, target }) => {
  const at = target.indexOf('?');
  const event = {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '192.0.2.1' },
    request: {
      method: 'GET',
      uri: at < 0 ? target : target.slice(0, at),
      querystring: querystring(at < 0 ? '' : target.slice(at + 1)),
      headers: { host: { value: 'd111111abcdef8.cloudfront.net' } },
      cookies: {},
    },
  };
  const out = sandbox.handler(event);
  if (out.statusCode !== undefined) {
    return { name, status: out.statusCode, body: out.body.data, uri: null, query: null };
  }
  return { name, status: 'pass', body: null, uri: out.uri, query: pairs(out.querystring) };
});
process.stdout.write(JSON.stringify(results) + '\n');
