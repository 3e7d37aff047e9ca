//! From a representation to a response: the store's round trip that the
//! plan asks for, the one decision, and the head and bodies it selects.

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::Response;

use super::{LogNote, MediaService};
use crate::body::ResponseBody;
use crate::protocol::decision::{decide, Decision, ReadMethod, ReadRequest, Refusal};
use crate::protocol::delegation::{plan_store_read, FetchPlan, StorePlan};
use crate::protocol::description::Description;
use crate::protocol::headers::{self as heads, Head};
use crate::protocol::multipart::{new_boundary, MultipartLayout};
use crate::protocol::range::{ByteRange, Selection};
use crate::representation::{
    BodyStream, Opened, RangeReader, Representation, SourceError, Started,
};

impl MediaService {
    /// Serves any representation: plans the store's round trip, decides on
    /// what it shows, and sends the bytes the decision selects.
    pub(super) async fn serve(
        &self,
        representation: &dyn Representation,
        request: &ReadRequest,
    ) -> Result<Response<ResponseBody>, SourceError> {
        let is_head = request.method == ReadMethod::Head;
        let plan = plan_store_read(request, representation.capabilities());
        let mut opened = representation.open(&plan).await?;
        if let (
            Opened::Refused {
                refusal: Refusal::PreconditionFailed,
                ..
            },
            StorePlan::Fetch(FetchPlan {
                if_range_failed: Some(whole),
                ..
            }),
        ) = (&opened, &plan)
        {
            opened = representation
                .open(&StorePlan::Fetch(FetchPlan::clone(whole)))
                .await?;
        }
        let (refusal, description) = match opened {
            Opened::Found {
                description,
                reader,
                started,
            } => match decide(request, &description) {
                Decision::Send(selection) => {
                    // HEAD answers as GET would (RFC 9110 §9.3.2), with a
                    // URL it can follow with HEAD.
                    if selection == Selection::Whole {
                        let elsewhere = representation.elsewhere(&description, request.method);
                        if let Some(location) = elsewhere.await? {
                            return Ok(fixed(heads::temporary_redirect(&location), is_head));
                        }
                    }
                    let bodies = if is_head {
                        Vec::new()
                    } else {
                        bodies_for(&selection, description.size, reader.as_ref(), started)
                    };
                    return Ok(self.content(description, selection, bodies, is_head));
                }
                Decision::Refuse(refusal) => (refusal, Some(description)),
            },
            Opened::Refused {
                refusal,
                description,
            } => (refusal, description),
        };
        let cache_control = &self.settings.cache_control;
        Ok(match refusal {
            Refusal::NotModified => {
                head_only(heads::not_modified(description.as_ref(), cache_control))
            }
            Refusal::PreconditionFailed => {
                fixed(heads::precondition_failed(description.as_ref()), is_head)
            }
            Refusal::RangeNotSatisfiable { size } => {
                fixed(heads::range_not_satisfiable(size), is_head)
            }
        })
    }

    fn content(
        &self,
        description: Description,
        selection: Selection,
        bodies: Vec<BodyStream>,
        is_head: bool,
    ) -> Response<ResponseBody> {
        let cache_control = &self.settings.cache_control;
        let mut note = LogNote::default();
        let (head, length, bodies) = match &selection {
            Selection::Whole => (
                heads::whole(&description, cache_control),
                description.size,
                bodies,
            ),
            Selection::Single(range) => (
                heads::single_range(&description, range, cache_control),
                range.len(),
                bodies,
            ),
            Selection::Multi(ranges) => {
                let layout = MultipartLayout::new(
                    &new_boundary(),
                    &description.content_type,
                    description.size,
                    ranges,
                );
                let head = heads::multi_range(&description, &layout, cache_control);
                let list: Vec<String> = ranges.iter().map(ToString::to_string).collect();
                note.ranges = Some(format!("bytes {}", list.join(",")));
                (head, layout.content_length(), frame_parts(&layout, bodies))
            }
        };
        let body = if is_head || bodies.is_empty() {
            ResponseBody::empty()
        } else {
            ResponseBody::stream(Box::pin(stream::iter(bodies).flatten()), length)
        };
        let mut response = with_head(head, body);
        response.extensions_mut().insert(note);
        response
    }
}

/// The streams of a selection's bytes: what the store's read already started
/// where it is exactly that, else reads of the version described.
fn bodies_for(
    selection: &Selection,
    size: u64,
    reader: &dyn RangeReader,
    started: Option<Started>,
) -> Vec<BodyStream> {
    let ranges: Vec<ByteRange> = match selection {
        Selection::Whole => ByteRange::whole(size).into_iter().collect(),
        Selection::Single(range) => vec![*range],
        Selection::Multi(ranges) => ranges.clone(),
    };
    if let Some(started) = started {
        let same = match (selection, started.range) {
            (Selection::Whole, None) => true,
            (Selection::Single(range), Some(sent)) => *range == sent,
            _ => false,
        };
        if same {
            return if ranges.is_empty() {
                Vec::new()
            } else {
                vec![started.body]
            };
        }
    }
    ranges.into_iter().map(|range| reader.read(range)).collect()
}

/// Interleaves the multipart framing with the parts' bytes.
fn frame_parts(layout: &MultipartLayout, parts: Vec<BodyStream>) -> Vec<BodyStream> {
    if parts.is_empty() {
        return parts; // HEAD
    }
    let mut pieces: Vec<BodyStream> = Vec::with_capacity(2 * parts.len() + 1);
    for (head, part) in layout.part_heads().iter().zip(parts) {
        pieces.push(once(head.clone()));
        pieces.push(part);
    }
    pieces.push(once(layout.closing()));
    pieces
}

fn once(bytes: Bytes) -> BodyStream {
    Box::pin(stream::once(async move { Ok::<_, SourceError>(bytes) }))
}

fn with_head(head: Head, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    response
}

pub(super) fn head_only(head: Head) -> Response<ResponseBody> {
    with_head(head, ResponseBody::empty())
}

/// A response with a small fixed body (left out for HEAD, headers kept).
pub(super) fn fixed((head, body): (Head, Bytes), is_head: bool) -> Response<ResponseBody> {
    let body = if is_head {
        ResponseBody::empty()
    } else {
        ResponseBody::full(body)
    };
    with_head(head, body)
}
