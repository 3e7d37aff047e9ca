import cf from 'cloudfront';
import crypto from 'crypto';

// The viewer-request CloudFront Function (runtime cloudfront-js-2.0) in front
// of the cache: it checks signed links as the function does, and sends image
// derivative requests to the derived store.
//
// Signed links (when the stack has signing keys): a link is
// PATH?expires=UNIX_SECONDS&kid=KEY_ID&sig=SIGNATURE, SIGNATURE the unpadded
// base64url of HMAC-SHA256(secret, "media-streamer-v1\n" + PATH + "\n" +
// expires), PATH the decoded path (with an image's canonical parameters, see
// below). A bad link gets the function's own 403. For an object the three
// parameters are then removed, so the cache key is the path alone (one cached
// copy shared by every link); other parameters stay. A directory path (the
// index pages) keeps its query: the function behind it checks the link again
// and pages with it.
//
// Image derivatives: on a JPEG, PNG, WebP, GIF or AVIF path, any of w, h, fit,
// fmt, q makes the request a derivative request; on an MP4, MOV or M4V path,
// frame=SECONDS (with those if wanted) asks for the picture at that time, an
// image derivative too (registry::select has the rules of both; a frame of a
// WebM is the function's 415). Its parameters are checked as the function
// checks them (the same 400s), and the path becomes the derivative's stored
// name, as DerivativeId::stored_name writes it (source key / canonical
// parameters, the Accept class for fmt=auto, the kind's version), with no
// query: the cache key (the path) is then the canonical parameters and the
// Accept class. The request goes to an origin group: S3's derived store first,
// the function (which renders, stores and answers) when S3 has no such object.
//
// This file is the only hand-written copy: scripts/render-template.py puts it
// into template.yaml without its comments, and fills the SETTINGS line from
// the stack's parameters and the TABLES line from deploy/edge/registry.json. The
// tests run that rendered code under node (deploy/edge/run-cases.mjs).

// Base64 of MEDIA_SIGNING_SECRET and of MEDIA_SIGNING_KEYS (one of them set,
// or neither: no signed links), MEDIA_SIGNING_SKEW_SECS and MEDIA_IMAGE_SIZES.
var SETTINGS = { secret: '', keys: '', skew: '30', sizes: '' };

// The tables of the representation kinds, from the function's registry
// (src/registry.rs): the derivative parameters in canonical order, the
// extensions of images, of movies and of videos whose frames are refused
// (415), the formats, the q step, the latest frame time, each kind's version
// and the refusals' texts. scripts/render-template.py writes
// deploy/edge/registry.json (what `media-streamer registry` prints) here.
var TABLES = {};

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
    var directory = path.charAt(path.length - 1) === '/';
    var image = null;
    if (!directory && TABLES.params.some((name) => query[name])) {
        image = imageParams(path, query);
        if (typeof image === 'string') {
            return refuse(400, 'Bad Request', image);
        }
        if (image.codec) {
            return refuse(415, 'Unsupported Media Type', image.codec);
        }
    }
    var keys = signingKeys();
    if (keys.length) {
        // '%' and '?' of the key escaped, as signing::signed_path does.
        var e = path.replace(/%/g, '%25').replace(/\?/g, '%3F');
        var signed = image && image.parts.length ? e + '?' + image.parts.join('&') : e;
        var reason = verify(signed, query, keys, Math.floor(Date.now() / 1000));
        if (reason) {
            return refuse(403, 'Forbidden', reason);
        }
        if (!directory) {
            for (var i = 0; i < SIGNED.length; i++) {
                delete query[SIGNED[i]];
            }
        }
    }
    if (image) {
        var name = path.slice(1) + '/' + (image.parts.join(',') || 'orig') +
            (image.auto ? ',accept=' + acceptClass(request.headers.accept) : '') +
            ',e=' + TABLES.versions[image.movie ? 'frame' : 'image'];
        request.uri = '/' + encodeURIComponent(name).replace(/%2F/g, '/')
            .replace(/%2C/g, ',').replace(/%3D/g, '=');
        request.querystring = {};
        cf.createRequestOriginGroup({
            originIds: ['derived', 'function-derived'],
            failoverCriteria: { statusCodes: [403, 404] }
        });
    }
    return request;
}

// The derivative parameters of a request for the image or movie at path, as
// the function's parser reads them ({parts: the canonical form, auto, movie}),
// why the function refuses them (a string: 400), or {codec: why} for a frame
// of a video the function does not decode (415). Values are percent-decoded,
// names are not.
function imageParams(path, query) {
    var T = TABLES;
    var file = path.slice(path.lastIndexOf('/') + 1);
    var dot = file.lastIndexOf('.');
    var ext = dot < 0 ? '' : lower(file.slice(dot + 1));
    var movie = T.movies.indexOf(ext) >= 0, codec = T.text.codec[ext];
    if (!movie && !codec && T.images.indexOf(ext) < 0) {
        return T.text.notanimage;
    }
    var p = {};
    var names = Object.keys(query);
    for (var i = 0; i < names.length; i++) {
        var name = names[i];
        if (SIGNED.indexOf(name) >= 0) {
            continue;
        }
        if (T.params.indexOf(name) < 0) {
            return "unknown parameter '" + first64(pdecode(name)) + "' (images take w, h, fit, fmt and q)";
        }
        var field = query[name];
        var value = pdecode(field.value);
        var v = value;
        var allowed = null;
        if (name === 'frame') {
            // S or S.F seconds: no sign, no leading zero, at most 3 decimals,
            // up to a day; canonical without trailing zeros (1.500 is 1.5).
            v = String(Number(value));
            allowed = /^(0|[1-9][0-9]*)(\.[0-9]{1,3})?$/.test(value) && v <= T.maxframe ? null :
                'the times from 0 to ' + T.maxframe + ' seconds, with at most 3 decimals';
        } else if (name === 'w' || name === 'h') {
            v = unsigned(value, 4294967295);
            allowed = sizes().indexOf(v) < 0 ? sizes().join(', ') : null;
        } else if (name === 'fit') {
            allowed = v === 'inside' || v === 'cover' ? null : 'inside, cover';
        } else if (name === 'fmt') {
            allowed = T.formats.indexOf(v) < 0 ? T.formats.join(', ') : null;
        } else {
            v = unsigned(value, 255);
            allowed = v > 0 && v <= 100 && v % T.qstep === 0 ? null : 'the multiples of ' + T.qstep + ' up to 100';
        }
        if (allowed !== null) {
            return "'" + name + '=' + first64(value) + "' is not allowed: " + name + ' is one of ' + allowed;
        }
        if (field.multiValue && field.multiValue.length > 1) {
            return "the parameter '" + name + "' is given more than once";
        }
        p[name] = v;
    }
    if (codec) {
        return p.frame === undefined ? T.text.notanimage : { codec: codec };
    }
    if (movie !== (p.frame !== undefined)) {
        return movie ? T.text.noframe : T.text.frameonimage;
    }
    if (!movie && !p.w && !p.h) {
        return T.text.nosize;
    }
    // In canonical order, each only when it is not the default.
    var parts = T.params.filter((n) => p[n] !== undefined && p[n] !== 'inside' && p[n] !== 'auto')
        .map((n) => n + '=' + p[n]);
    return { parts: parts, auto: !p.fmt || p.fmt === 'auto', movie: movie };
}

// A decimal integer as Rust's parse::<u32|u8>() takes it (a '+' allowed), with
// no leading zero, up to max; else -1.
function unsigned(text, max) {
    var n = Number(text);
    return /^\+?[0-9]+$/.test(text) && text.charAt(0) !== '0' && n <= max ? n : -1;
}

// MEDIA_IMAGE_SIZES as the function holds it: sorted, no repeats.
function sizes() {
    return SETTINGS.sizes.split(',').map(Number).sort((a, b) => a - b)
        .filter((n, i, all) => i === 0 || all[i - 1] !== n);
}

// Which formats the Accept field takes, as far as fmt=auto cares: it lists
// image/avif, else image/webp (an entry with q=0 is a refusal). Every field
// line counts, joined with commas (RFC 9110 section 5.3), as the function
// reads them.
function acceptClass(field) {
    var accept = field ? (field.multiValue || [field]).map((v) => v.value).join(', ') : '';
    return lists(accept, 'image/avif') ? 'avif' : lists(accept, 'image/webp') ? 'webp' : 'other';
}

function lists(accept, wanted) {
    return accept.split(',').some((item) => {
        var parts = item.split(';');
        var refused = parts.slice(1).some((part) => {
            part = part.trim();
            var q = part.slice(2);
            return part.slice(0, 2) === 'q=' && Math.fround(Number(q)) === 0 &&
                /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(q);
        });
        return lower(parts[0].trim()) === wanted && !refused;
    });
}

function lower(s) {
    return s.replace(/[A-Z]+/g, (c) => c.toLowerCase());
}

// Percent-decoded as the function decodes a query: a '%' without two hex
// digits stays, bytes that are not UTF-8 become U+FFFD.
function pdecode(s) {
    var bytes = Buffer.from(s, 'utf8');
    var out = [];
    for (var i = 0; i < bytes.length; i++) {
        var hex = bytes[i] === 37 ? String.fromCharCode(bytes[i + 1], bytes[i + 2]) : '';
        if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
            out.push(parseInt(hex, 16));
            i += 2;
        } else {
            out.push(bytes[i]);
        }
    }
    return Buffer.from(out).toString('utf8');
}

// The first 64 characters (code points) of s.
function first64(s) {
    var i = 0;
    for (var n = 0; i < s.length && n < 64; i++, n++) {
        var c = s.charCodeAt(i);
        if (c >= 0xd800 && c < 0xdc00) {
            i++;
        }
    }
    return s.slice(0, i);
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
        return 400;
    }
    if (utf8Length(decoded) > MAX_KEY_BYTES) {
        return 414;
    }
    if (/[\u0000-\u001f\u007f-\u009f\\]/.test(decoded)) {
        return 400;
    }
    var body = decoded.charAt(decoded.length - 1) === '/' ? decoded.slice(0, -1) : decoded;
    if (body !== '' && body.split('/').some((s) => s === '' || s === '.' || s === '..')) {
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
function verify(path, query, keys, now) {
    var given = {};
    for (var i = 0; i < SIGNED.length; i++) {
        var field = query[SIGNED[i]];
        if (field) {
            if (field.multiValue && field.multiValue.length > 1) {
                return MALFORMED;
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
    Buffer.from(SETTINGS.keys, 'base64').toString('utf8').split(',').forEach((item) => {
        item = item.trim();
        var colon = item.indexOf(':');
        if (colon > 0) {
            keys.push([item.slice(0, colon), item.slice(colon + 1)]);
        }
    });
    return keys;
}
