// Runs the edge function the way CloudFront Functions runs it, for tests:
// reads {settings, cases} as JSON on stdin, prints one JSON result per case on
// stdout.
//
//   settings: {secret, keys, skew, sizes}  as the stack's SigningSecret,
//                                          SigningKeys, SigningSkewSecs and
//                                          ImageSizes parameters
//   cases:    [{name, target, accept}]     target: the request's path and
//                                          query; accept: its Accept field,
//                                          field lines separated by "\n"
//   result:   {name, status, body, uri, query, origin}
//             status "pass" when the request goes on (uri: its path then,
//             query: what is left of the query, [[name, value], ...]), else
//             the generated answer's status; origin: the calls the code made
//             to the cloudfront module, [[method, argument], ...]
//
// The code run is what template.yaml carries (scripts/render-template.py
// --code), with its Fn::Sub variables filled as CloudFormation fills them:
// ${SecretBase64} and ${KeysBase64} the base64 of the secrets, the parameters
// as given, ${!X} written as ${X}; any other variable is an error. It runs in a
// context of its own with only what cloudfront-js-2.0 offers it here: the
// modules crypto (node's: the same createHmac and base64url digest) and
// cloudfront (a recorder of the origin helpers: updateRequestOrigin,
// selectRequestOriginById, createRequestOriginGroup), each through its
// `import NAME from 'NAME';` line, which must come first; Buffer and console.
// Any other import or require fails. The event is shaped as in the CloudFront
// Functions event structure: request.uri is the path as received,
// request.querystring has one field per parameter name, {value}, with a
// multiValue array when a name repeats; values are passed as received, not
// percent-decoded.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import vm from 'node:vm';

const RENDER = fileURLToPath(new URL('../../scripts/render-template.py', import.meta.url));
const IMPORTS = ["import cf from 'cloudfront';", "import crypto from 'crypto';"];

const input = JSON.parse(readFileSync(0, 'utf8'));
const b64 = (text) => Buffer.from(text || '', 'utf8').toString('base64');
const settings = input.settings;
const variables = {
  SecretBase64: b64(settings.secret),
  KeysBase64: b64(settings.keys),
  SigningSkewSecs: String(settings.skew ?? 30),
  ImageSizes: settings.sizes,
};

// Fn::Sub: ${Name} is the variable's value, ${!Name} is the literal ${Name}.
function sub(text) {
  return text.replace(/\$\{(!?)([^}]*)\}/g, (_, bang, name) => {
    if (bang) return '${' + name + '}';
    if (typeof variables[name] !== 'string') {
      throw new Error(`Fn::Sub has no variable ${name}`);
    }
    return variables[name];
  });
}

let source = sub(execFileSync('python3', [RENDER, '--code'], { encoding: 'utf8' }));
const lines = source.split('\n');
if (lines[0] !== IMPORTS[0]) {
  throw new Error(`the code's first line must be ${IMPORTS[0]}`);
}
source = lines.map((line) => (IMPORTS.includes(line) ? '' : line)).join('\n');
if (/^\s*import\s/m.test(source)) {
  throw new Error('cloudfront-js-2.0 here has only the modules crypto and cloudfront');
}

let calls = [];
const cf = {};
for (const method of ['updateRequestOrigin', 'selectRequestOriginById', 'createRequestOriginGroup']) {
  cf[method] = (argument) => {
    calls.push([method, JSON.parse(JSON.stringify(argument))]);
  };
}
const sandbox = {
  cf,
  crypto,
  require(name) {
    throw new Error(`cloudfront-js-2.0 here has no require(${JSON.stringify(name)})`);
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

const results = input.cases.map(({ name, target, accept }) => {
  const at = target.indexOf('?');
  const headers = { host: { value: 'd111111abcdef8.cloudfront.net' } };
  if (accept !== undefined && accept !== null) {
    // Several field lines: the first as value, all in multiValue, as
    // CloudFront gives a header that came more than once.
    const lines = accept.split('\n');
    headers.accept = { value: lines[0] };
    if (lines.length > 1) headers.accept.multiValue = lines.map((value) => ({ value }));
  }
  const event = {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '192.0.2.1' },
    request: {
      method: 'GET',
      uri: at < 0 ? target : target.slice(0, at),
      querystring: querystring(at < 0 ? '' : target.slice(at + 1)),
      headers,
      cookies: {},
    },
  };
  calls = [];
  const out = sandbox.handler(event);
  if (out.statusCode !== undefined) {
    return { name, status: out.statusCode, body: out.body.data, uri: null, query: null, origin: calls };
  }
  return { name, status: 'pass', body: null, uri: out.uri, query: pairs(out.querystring), origin: calls };
});
process.stdout.write(JSON.stringify(results) + '\n');
