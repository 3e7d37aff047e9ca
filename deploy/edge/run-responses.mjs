// Runs the viewer-response function the way CloudFront Functions runs it, for
// tests: reads {cases} as JSON on stdin, prints one JSON result per case on
// stdout.
//
//   cases:   [{name, contentType}]   the origin's Content-Type (null: none)
//   result:  {name, csp}             the response's Content-Security-Policy
//                                    after the function (null: none)
//
// The code run is what template.yaml carries (scripts/render-template.py
// --code document-policy), in a context of its own with nothing but console:
// it imports no module. The event is shaped as in the CloudFront Functions
// event structure for viewer-response: response.headers has one field per
// lowercase name, {value}.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const RENDER = fileURLToPath(new URL('../../scripts/render-template.py', import.meta.url));
const source = execFileSync('python3', [RENDER, '--code', 'document-policy'], { encoding: 'utf8' });
if (/^\s*import\s/m.test(source) || /require\(/.test(source)) {
  throw new Error('the viewer-response function needs no module');
}
const sandbox = { console };
vm.createContext(sandbox);
vm.runInContext(source, sandbox, { filename: 'document-policy.js' });
if (typeof sandbox.handler !== 'function') {
  throw new Error('document-policy.js defines no handler(event)');
}

const input = JSON.parse(readFileSync(0, 'utf8'));
const results = input.cases.map(({ name, contentType }) => {
  const headers = { 'content-length': { value: '10' } };
  if (contentType !== null && contentType !== undefined) headers['content-type'] = { value: contentType };
  const event = {
    version: '1.0',
    context: { eventType: 'viewer-response' },
    viewer: { ip: '192.0.2.1' },
    request: { method: 'GET', uri: '/' + name, querystring: {}, headers: {}, cookies: {} },
    response: { statusCode: 200, statusDescription: 'OK', headers, cookies: {} },
  };
  const out = sandbox.handler(event);
  const csp = out.headers['content-security-policy'];
  return { name, csp: csp ? csp.value : null };
});
process.stdout.write(JSON.stringify(results));
