// The viewer-response CloudFront Function (runtime cloudfront-js-2.0) on the
// media served from S3: a stored document that a browser would run script in
// (HTML, XHTML, SVG, XML of any kind) gets the Content-Security-Policy the
// function sends on it (protocol::headers::STORED_DOCUMENT_CSP, chosen by
// protocol::media_type::runs_script), so an uploaded page runs no script of
// the distribution's origin. Media get none: a browser shows a video or an
// image opened directly in a document of its own making, which the policy
// would stop from loading the very file.
//
// scripts/render-template.py puts this file into template.yaml as
// EdgeResponseFunction's code; the tests run that code under node
// (deploy/edge/run-responses.mjs) beside the function's own answers.

var POLICY = "default-src 'none'; sandbox";
var DOCUMENTS = ['text/html', 'text/xml', 'application/xml', 'text/xsl'];

function handler(event) {
    var response = event.response;
    var type = response.headers['content-type'];
    var essence = type ? type.value.split(';')[0].trim().toLowerCase() : '';
    var xml = essence.length > 4 && essence.slice(-4) === '+xml';
    if (DOCUMENTS.indexOf(essence) >= 0 || xml) {
        response.headers['content-security-policy'] = { value: POLICY };
    }
    return response;
}
