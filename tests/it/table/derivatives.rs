//! Image derivatives: `?w=&h=&fit=&fmt=&q=` on an image gets the same exact
//! answers as a stored file (whole, ranges, several ranges, HEAD,
//! conditionals, If-Range) with its own ETag, type and length, and the
//! source's Last-Modified. The expected bytes are the engine's own render of
//! the fixture image; the expected ETag is made from the source's validator.

use media_streamer::derivative::params::{self, DEFAULT_SIZES};
use media_streamer::derivative::DerivativeId;
use media_streamer::image::{self, Fit, RenderSpec};

use super::{Builder, Rep};

/// The fixture image (a JPEG with EXIF orientation and GPS tags).
pub const PHOTO: &str = "sub/photo.jpg";
/// Bytes that are not an image, under an image's name.
pub const BROKEN: &str = "sub/broken.jpg";

/// The representation `query` asks of the photo, for a client whose
/// `Accept` is `accept`, rendered by the engine itself.
fn derivative(b: &Builder<'_>, query: &str, accept: Option<&str>) -> Rep {
    let parsed = params::parse(Some(query), DEFAULT_SIZES).unwrap().unwrap();
    let id = DerivativeId::new(PHOTO, parsed, accept);
    // The photo has no transparency.
    let format = id.output_format(false);
    let spec = RenderSpec {
        width: parsed.width,
        height: parsed.height,
        fit: match parsed.fit {
            params::Fit::Inside => Fit::Inside,
            params::Fit::Cover => Fit::Cover,
        },
        format,
        quality: parsed.quality,
    };
    let source = (b.store.validators)(PHOTO);
    let rendered =
        image::render(&b.fixture.bytes(PHOTO), &spec, image::DEFAULT_MAX_PIXELS).unwrap();
    Rep {
        target: format!("/{PHOTO}?{query}"),
        content_type: rendered.content_type.to_owned(),
        data: rendered.bytes,
        etag: id.etag(&source.etag).to_string(),
        last_modified: None,
    }
}

pub(super) fn add(b: &mut Builder<'_>) {
    let webp = derivative(b, "w=32&fmt=webp", None);
    let size = webp.data.len() as u64;
    let etag = webp.etag.clone();
    let source_etag = (b.store.validators)(PHOTO).etag;
    b.whole_of("derivative: whole", "GET", &webp, &[]);
    b.whole_of("derivative: HEAD", "HEAD", &webp, &[]);
    b.partial_of(
        "derivative: first bytes",
        "GET",
        &webp,
        &[("Range", "bytes=0-9")],
        (0, 9),
    );
    b.partial_of(
        "derivative: suffix",
        "GET",
        &webp,
        &[("Range", "bytes=-16")],
        (size - 16, size - 1),
    );
    b.partial_of(
        "derivative: If-Range with its ETag",
        "GET",
        &webp,
        &[("Range", "bytes=4-11"), ("If-Range", &etag)],
        (4, 11),
    );
    b.whole_of(
        "derivative: If-Range with the source's ETag sends the whole",
        "GET",
        &webp,
        &[("Range", "bytes=4-11"), ("If-Range", &source_etag)],
    );
    // Computed bytes have no date: an If-Range date matches nothing.
    let source_date = (b.store.validators)(PHOTO).last_modified;
    b.whole_of(
        "derivative: If-Range with the source's date sends the whole",
        "GET",
        &webp,
        &[("Range", "bytes=4-11"), ("If-Range", &source_date)],
    );
    b.multipart_of(
        "derivative: two ranges",
        &webp,
        "bytes=0-1,8-11",
        &[(0, 1), (8, 11)],
    );
    let case = b.case(
        "derivative: If-None-Match with its ETag",
        "GET",
        &webp.target,
        &[("If-None-Match", &etag)],
    );
    case.status = 304;
    case.expect = vec![
        ("etag", etag.clone()),
        ("content-type", "image/webp".into()),
    ];
    case.absent = vec!["content-length", "content-range"];
    b.whole_of(
        "derivative: If-None-Match with the source's ETag",
        "GET",
        &webp,
        &[("If-None-Match", &source_etag)],
    );
    let case = b.error(
        "derivative: unsatisfiable range",
        "GET",
        &webp.target,
        &[("Range", "bytes=999999-")],
        416,
        "Range Not Satisfiable",
    );
    case.expect
        .push(("content-range", format!("bytes */{size}")));
    case.expect.push(("accept-ranges", "bytes".into()));

    // The parameters' canonical form names the same representation.
    let reordered = Rep {
        target: format!("/{PHOTO}?fmt=webp&fit=inside&w=32"),
        ..derivative(b, "w=32&fmt=webp", None)
    };
    b.whole_of(
        "derivative: the same in another order",
        "GET",
        &reordered,
        &[],
    );

    // fmt=auto answers what the client takes, and says it varies.
    for (name, accept) in [
        (
            "derivative: auto for an AVIF client",
            "image/avif,image/webp,*/*",
        ),
        ("derivative: auto for a WebP client", "image/webp,*/*"),
        ("derivative: auto for any other client", "*/*"),
    ] {
        let rep = derivative(b, "w=32", Some(accept));
        let case = b.whole_of(name, "GET", &rep, &[("Accept", accept)]);
        case.varies_on_accept = Some(true);
    }
    let rep = derivative(b, "w=32&fmt=jpeg&q=60", Some("image/avif"));
    let case = b.whole_of(
        "derivative: a named format does not vary",
        "GET",
        &rep,
        &[("Accept", "image/avif")],
    );
    case.varies_on_accept = Some(false);
    let cover = derivative(b, "w=32&h=32&fit=cover&fmt=png", None);
    b.whole_of("derivative: cover crop to PNG", "GET", &cover, &[]);

    let sizes = DEFAULT_SIZES
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let photo = format!("/{PHOTO}");
    for (name, query, reason) in [
        (
            "derivative: a size not allowed",
            "w=33",
            format!("'w=33' is not allowed: w is one of {sizes}"),
        ),
        (
            "derivative: an unknown parameter",
            "w=32&width=32",
            "unknown parameter 'width' (images take w, h, fit, fmt and q)".to_owned(),
        ),
        (
            "derivative: a repeated parameter",
            "w=32&w=64",
            "the parameter 'w' is given more than once".to_owned(),
        ),
        (
            "derivative: a bad quality",
            "q=0",
            "'q=0' is not allowed: q is one of the multiples of 5 up to 100".to_owned(),
        ),
    ] {
        let reason = format!("Bad Request: {reason}");
        b.error(name, "GET", &format!("{photo}?{query}"), &[], 400, &reason);
    }
    b.error(
        "derivative: image parameters on a video",
        "GET",
        "/sub/clip.webm?w=32",
        &[],
        400,
        "Bad Request: image parameters (w, h, fit, fmt, q) apply to JPEG, PNG, WebP, GIF and AVIF images only",
    );
    b.error(
        "derivative: a source that is no image",
        "GET",
        &format!("/{BROKEN}?w=32"),
        &[],
        422,
        "Unprocessable Entity: unsupported image: not a JPEG, PNG, WebP, GIF or AVIF image",
    );
    let stored = b.stored(super::Obj(&photo, PHOTO, "image/jpeg"));
    b.whole_of(
        "derivative: no parameters, the stored bytes",
        "GET",
        &stored,
        &[],
    );
}
