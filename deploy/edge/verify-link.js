// Signed links at the CloudFront edge: a CloudFront Function (runtime
// cloudfront-js-2.0) on viewer request that checks the link exactly as the
// function does (media-streamer's signing scheme, keys, rotation and skew) and
// answers 403 otherwise, before the cache is consulted.
//
// A link is PATH?expires=UNIX_SECONDS&kid=KEY_ID&sig=SIGNATURE, SIGNATURE the
// unpadded base64url of HMAC-SHA256(secret, "media-streamer-v1\n" + PATH +
// "\n" + expires), PATH the decoded path. For an object the three parameters
// are then removed, so the cache key is the path alone (one cached copy shared
// by every link) and S3 never sees them; other parameters stay. A directory
// path (the index pages) keeps its query: the function behind it checks the
// link again and pages with it.
//
// This file is the only hand-written copy: scripts/render-template.py puts it
// into template.yaml, where the SETTINGS line below is filled from the stack's
// parameters. The tests run it under node (deploy/edge/run-cases.mjs).

var crypto = require('crypto');

// Base64 of MEDIA_SIGNING_SECRET and of MEDIA_SIGNING_KEYS (one of them set),
// and MEDIA_SIGNING_SKEW_SECS.
var SETTINGS = { secret: '', keys: '', skew: '30' };

var DOMAIN = 'media-streamer-v1';
var SIGNED = ['expires', 'kid', 'sig'];
var MAX_KEY_BYTES = 1024;

var MISSING = 'this link needs a signature';
var MALFORMED = "the link's signature parameters are malformed";
var UNKNOWN_KEY = 'the link was signed with an unknown key';
var EXPIRED = 'the link has expired';
var INVALID = "the link's signature is not valid";

function handler(event) {
    var request = event.request;
    var path = decodedPath(request.uri);
    if (path === 400) {
        return refuse(400, 'Bad Request', '');
    }
    if (path === 414) {
        return refuse(414, 'URI Too Long', '');
    }
    var query = request.querystring;
    var reason = verify(path, query, Math.floor(Date.now() / 1000));
    if (reason) {
        return refuse(403, 'Forbidden', reason);
    }
    if (path.charAt(path.length - 1) !== '/') {
        for (var i = 0; i < SIGNED.length; i++) {
            delete query[SIGNED[i]];
        }
    }
    return request;
}

// The function's own plain-text refusal: status line, then the reason if any.
function refuse(status, description, reason) {
    var text = status + ' ' + description + (reason ? ': ' + reason : '');
    return {
        statusCode: status,
        statusDescription: description,
        headers: {
            'content-type': { value: 'text/plain; charset=utf-8' },
            'cache-control': { value: 'no-store' }
        },
        body: { encoding: 'text', data: text + '\n' }
    };
}

// The path as the function reads it (percent-decoded once), or the status
// the function answers a path it refuses with.
function decodedPath(uri) {
    if (uri.charAt(0) !== '/') {
        return 400;
    }
    var raw = uri.slice(1);
    if (raw.length > 3 * MAX_KEY_BYTES) {
        return 414;
    }
    if (/%(2f|5c)/i.test(raw) || /%(?![0-9a-f]{2})/i.test(raw)) {
        return 400;
    }
    var decoded;
    try {
        decoded = decodeURIComponent(raw);
    } catch (e) {
        return 400; // not UTF-8
    }
    if (utf8Length(decoded) > MAX_KEY_BYTES) {
        return 414;
    }
    if (/[\u0000-\u001f\u007f-\u009f\\]/.test(decoded)) {
        return 400;
    }
    var body = decoded.charAt(decoded.length - 1) === '/' ? decoded.slice(0, -1) : decoded;
    if (body !== '' && body.split('/').some(function (s) {
        return s === '' || s === '.' || s === '..';
    })) {
        return 400;
    }
    return '/' + decoded;
}

function utf8Length(s) {
    var n = 0;
    for (var i = 0; i < s.length; i++) {
        var c = s.charCodeAt(i);
        if (c < 0x80) {
            n += 1;
        } else if (c < 0x800) {
            n += 2;
        } else if (c >= 0xd800 && c < 0xdc00) {
            n += 4;
            i++;
        } else {
            n += 3;
        }
    }
    return n;
}

// '' when the query signs the path now, else why not.
function verify(path, query, now) {
    var given = {};
    for (var i = 0; i < SIGNED.length; i++) {
        var field = query[SIGNED[i]];
        if (field) {
            if (field.multiValue && field.multiValue.length > 1) {
                return MALFORMED; // a parameter twice
            }
            given[SIGNED[i]] = field.value;
        }
    }
    if (given.expires === undefined || given.sig === undefined) {
        return MISSING;
    }
    var expires = integer(given.expires);
    if (expires === null || !/^[A-Za-z0-9_-]*$/.test(given.sig) || !canonicalBase64(given.sig)) {
        return MALFORMED;
    }
    var keys = signingKeys();
    var secret = null;
    if (given.kid !== undefined) {
        for (var k = 0; k < keys.length; k++) {
            if (keys[k][0] === given.kid) {
                secret = keys[k][1];
            }
        }
    } else if (keys.length === 1) {
        secret = keys[0][1];
    }
    if (secret === null) {
        return UNKNOWN_KEY;
    }
    var expected = crypto.createHmac('sha256', secret)
        .update(DOMAIN + '\n' + path + '\n' + expires)
        .digest('base64url');
    if (!sameString(expected, given.sig)) {
        return INVALID;
    }
    if (now > Number(expires) + Number(SETTINGS.skew)) {
        return EXPIRED;
    }
    return '';
}

// A decimal 64-bit signed integer, written as the function writes it, or null.
function integer(text) {
    var s;
    try {
        s = decodeURIComponent(text);
    } catch (e) {
        return null;
    }
    var m = /^([+-]?)0*([0-9]+)$/.exec(s);
    if (!m) {
        return null;
    }
    var negative = m[1] === '-';
    var digits = m[2];
    var limit = negative ? '9223372036854775808' : '9223372036854775807';
    if (digits.length > 19 || (digits.length === 19 && digits > limit)) {
        return null;
    }
    return (negative && digits !== '0' ? '-' : '') + digits;
}

// Unpadded base64url as a strict decoder takes it: no length of 4n+1, no
// bits set past the last whole byte.
function canonicalBase64(s) {
    var alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    var rest = s.length % 4;
    var last = alphabet.indexOf(s.charAt(s.length - 1));
    return rest !== 1 && !(rest === 2 && (last & 15)) && !(rest === 3 && (last & 3));
}

function sameString(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    var diff = 0;
    for (var i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

// [[id, secret], ...] as the function reads its settings; the first signs.
function signingKeys() {
    var secret = Buffer.from(SETTINGS.secret, 'base64').toString('utf8');
    if (secret !== '') {
        return [['default', secret]];
    }
    var keys = [];
    Buffer.from(SETTINGS.keys, 'base64').toString('utf8').split(',').forEach(function (item) {
        item = item.trim();
        var colon = item.indexOf(':');
        if (colon > 0) {
            keys.push([item.slice(0, colon), item.slice(colon + 1)]);
        }
    });
    return keys;
}
