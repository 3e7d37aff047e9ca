//! The MP4 layer on movies made by ffmpeg, checked against what ffprobe and
//! ffmpeg read from them. ffmpeg must be installed (`apt-get install -y
//! ffmpeg`): without it these tests fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::mp4::{
    classify, frame_plan, movie_frame_plan, parse_movie, rewrite, scan_top_level_bytes,
    AsStoredReason, FrameError, Layout, Movie, SampleRef, Segment,
};
use crate::protocol::range::ByteRange;

fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} could not be run ({e}): install ffmpeg with `apt-get install -y ffmpeg`")
    });
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Makes `name` in `dir` with ffmpeg from `args` (inputs and codecs).
fn make(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut all = vec!["-v", "error", "-y"];
    all.extend_from_slice(args);
    all.push(path.to_str().unwrap());
    run("ffmpeg", &all);
    path
}

/// A moving test picture: x264 puts B-frames in it (a still one gets few).
const VIDEO: [&str; 4] = [
    "-f",
    "lavfi",
    "-i",
    "testsrc2=duration=3:size=160x120:rate=25",
];
const AUDIO: [&str; 4] = ["-f", "lavfi", "-i", "sine=duration=3"];

fn args(parts: &[&[&'static str]]) -> Vec<&'static str> {
    parts.concat()
}

/// ffprobe's packets of a file (`select` picks streams, such as `v:0`), as
/// JSON objects with the `fields` asked for.
fn packets(path: &Path, select: Option<&str>, fields: &str) -> Vec<Value> {
    let entries = format!("packet={fields}");
    let mut all = vec!["-v", "error", "-show_entries", &entries, "-of", "json"];
    if let Some(select) = select {
        all.extend(["-select_streams", select]);
    }
    all.push(path.to_str().unwrap());
    let json: Value = serde_json::from_slice(&run("ffprobe", &all)).unwrap();
    json["packets"].as_array().cloned().unwrap_or_default()
}

fn int(value: &Value, field: &str) -> i64 {
    value[field]
        .as_i64()
        .or_else(|| value[field].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("no {field} in {value}"))
}

fn moov_of(file: &[u8]) -> &[u8] {
    let boxes = scan_top_level_bytes(file).unwrap();
    let moov = boxes.iter().find(|b| &b.kind == b"moov").unwrap();
    &file[moov.offset as usize..moov.end() as usize]
}

#[test]
fn faststart_output_plays_as_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "h264-aac.mp4",
            args(&[
                &VIDEO,
                &AUDIO,
                &["-c:v", "libx264", "-g", "50", "-c:a", "aac"],
            ]),
        ),
        ("mpeg4.mp4", args(&[&VIDEO, &["-c:v", "mpeg4"]])),
        ("audio.m4a", args(&[&AUDIO, &["-c:a", "aac"]])),
        (
            "h264-aac.mov",
            args(&[&VIDEO, &AUDIO, &["-c:v", "libx264", "-c:a", "aac"]]),
        ),
        (
            "h264.3gp",
            args(&[
                &VIDEO,
                &AUDIO,
                &["-c:v", "libx264", "-c:a", "aac", "-ac", "1", "-ar", "8000"],
            ]),
        ),
    ];
    for (name, args) in cases {
        let source = make(dir.path(), name, &args);
        let file = std::fs::read(&source).unwrap();
        let boxes = scan_top_level_bytes(&file).unwrap();
        let Layout::Faststart { moov } = classify(&boxes, 1 << 20) else {
            panic!("{name}: {boxes:?}");
        };
        let faststart = rewrite(&boxes, &file[moov.offset as usize..moov.end() as usize]).unwrap();
        assert_eq!(faststart.size, file.len() as u64, "{name}");
        let output: Vec<u8> = faststart
            .segments(ByteRange::whole(faststart.size).unwrap())
            .into_iter()
            .flat_map(|segment| match segment {
                Segment::Moov { start, end } => faststart.moov[start..end].to_vec(),
                Segment::Source(r) => file[r.first as usize..=r.last as usize].to_vec(),
            })
            .collect();
        let out_path = dir.path().join(format!("faststart-{name}"));
        std::fs::write(&out_path, &output).unwrap();

        let out_boxes = scan_top_level_bytes(&output).unwrap();
        let kinds = |boxes: &[crate::mp4::BoxHeader]| {
            boxes.iter().map(|b| b.kind_name()).collect::<Vec<_>>()
        };
        let mut expected_kinds = kinds(&boxes);
        let moov_index = expected_kinds.iter().position(|k| k == "moov").unwrap();
        let mdat_index = expected_kinds.iter().position(|k| k == "mdat").unwrap();
        let moved = expected_kinds.remove(moov_index);
        expected_kinds.insert(mdat_index, moved);
        assert_eq!(kinds(&out_boxes), expected_kinds, "{name}");
        assert_eq!(
            classify(&out_boxes, 1 << 20),
            Layout::AsStored(AsStoredReason::AlreadyFaststart),
            "{name}"
        );

        // Every packet as before, its data moov's size further on.
        let fields = "stream_index,pts,dts,size,pos";
        let (before, after) = (
            packets(&source, None, fields),
            packets(&out_path, None, fields),
        );
        assert_eq!(before.len(), after.len(), "{name}");
        assert!(before.len() > 70, "{name}: {} packets", before.len());
        for (b, a) in before.iter().zip(&after) {
            for field in ["stream_index", "pts", "dts", "size"] {
                assert_eq!(b[field], a[field], "{name}: {field} of {b} and {a}");
            }
            assert_eq!(
                int(a, "pos"),
                int(b, "pos") + moov.size as i64,
                "{name}: {b} {a}"
            );
        }
        let framemd5 = |path: &Path| {
            run(
                "ffmpeg",
                &[
                    "-v",
                    "error",
                    "-i",
                    path.to_str().unwrap(),
                    "-map",
                    "0",
                    "-c",
                    "copy",
                    "-f",
                    "framemd5",
                    "-",
                ],
            )
        };
        let md5 = framemd5(&source);
        assert!(md5.len() > 1000, "{name}");
        assert_eq!(
            String::from_utf8(framemd5(&out_path)).unwrap(),
            String::from_utf8(md5).unwrap(),
            "{name}"
        );

        // What ffmpeg's own faststart makes is left as it is.
        let ffmpeg_faststart = make(
            dir.path(),
            &format!("ffmpeg-faststart-{name}"),
            &[
                "-i",
                source.to_str().unwrap(),
                "-map",
                "0",
                "-c",
                "copy",
                "-movflags",
                "+faststart",
            ],
        );
        let boxes = scan_top_level_bytes(&std::fs::read(ffmpeg_faststart).unwrap()).unwrap();
        assert_eq!(
            classify(&boxes, 1 << 20),
            Layout::AsStored(AsStoredReason::AlreadyFaststart),
            "{name}"
        );
    }
}

/// The plan ffprobe's packets call for: the packet with the greatest pts at
/// or before `target` (the first frame before any), back to the keyframe
/// before it in decode order, and the target's place by pts.
fn expected_plan(packets: &[Value], target: i64) -> (Vec<SampleRef>, usize) {
    let pts: Vec<i64> = packets.iter().map(|p| int(p, "pts")).collect();
    let shown = (0..pts.len())
        .filter(|&i| pts[i] <= target)
        .max_by_key(|&i| (pts[i], std::cmp::Reverse(i)))
        .or_else(|| (0..pts.len()).min_by_key(|&i| (pts[i], i)))
        .unwrap();
    let key = (0..=shown)
        .rev()
        .find(|&i| packets[i]["flags"].as_str().unwrap().contains('K'))
        .unwrap();
    let samples = packets[key..=shown]
        .iter()
        .map(|p| SampleRef {
            offset: int(p, "pos") as u64,
            size: int(p, "size") as u32,
        })
        .collect();
    let rank = (key..=shown).filter(|&i| pts[i] < pts[shown]).count();
    (samples, rank)
}

#[test]
fn frame_plans_follow_ffprobe() {
    let dir = tempfile::tempdir().unwrap();
    // (name, args, whether frames are decoded out of order)
    let cases: Vec<(&str, Vec<&str>, bool)> = vec![
        (
            "b-frames.mp4",
            args(&[
                &VIDEO,
                &AUDIO,
                &["-c:v", "libx264", "-g", "50", "-c:a", "aac"],
            ]),
            true,
        ),
        (
            "no-b-frames.mp4",
            args(&[&VIDEO, &["-c:v", "libx264", "-g", "50", "-bf", "0"]]),
            false,
        ),
        (
            "keyframes-every-10.mp4",
            args(&[&VIDEO, &["-c:v", "libx264", "-g", "10"]]),
            true,
        ),
    ];
    for (name, args, reordered) in cases {
        let path = make(dir.path(), name, &args);
        let file = std::fs::read(&path).unwrap();
        let movie = parse_movie(moov_of(&file)).unwrap();
        assert_eq!(movie.duration_secs, Some(3.0), "{name}");
        let track = movie.video_track().unwrap();
        assert_eq!(
            (
                track.codec.as_str(),
                track.timescale,
                track.width,
                track.height
            ),
            ("avc1", 12800, 160, 120),
            "{name}"
        );
        assert_eq!(track.avc_config.as_ref().map(|c| c[0]), Some(1), "{name}");

        // Every sample where, when and what ffprobe says it is.
        let packets = packets(&path, Some("v:0"), "pts,dts,size,pos,flags");
        assert_eq!(packets.len() as u64, track.samples.len(), "{name}");
        for (i, p) in packets.iter().enumerate() {
            let sample = track.samples.sample(i as u64).unwrap();
            let got = (
                sample.offset as i64,
                i64::from(sample.size),
                sample.presentation_time(track.edit_media_time) as i64,
                sample.dts - track.edit_media_time,
                sample.sync,
            );
            let flags = p["flags"].as_str().unwrap();
            let expected = (
                int(p, "pos"),
                int(p, "size"),
                int(p, "pts"),
                int(p, "dts"),
                flags.contains('K'),
            );
            assert_eq!(got, expected, "{name}: sample {i}");
        }

        // Plans at the times asked for, at every frame and between frames.
        let mut times = vec![0.0, 1.0, 2.5, 2.999, -1.0];
        times.extend((0..75).flat_map(|f| [f as f64 / 25.0, (f as f64 + 0.5) / 25.0]));
        let mut out_of_order = 0;
        for seconds in times {
            let plan = frame_plan(track, seconds, 1 << 20).unwrap();
            let target = (seconds * 12800.0).floor() as i64;
            let (samples, rank) = expected_plan(&packets, target);
            assert_eq!(
                (&plan.samples, plan.target_rank),
                (&samples, rank),
                "{name} at {seconds} s"
            );
            assert_eq!(plan, movie_frame_plan(&movie, seconds, 1 << 20).unwrap());
            let read: u64 = plan.reads.iter().map(|r| r.len()).sum();
            let needed: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
            assert!(read >= needed, "{name} at {seconds} s");
            for s in &samples {
                assert!(
                    plan.reads
                        .iter()
                        .any(|r| r.first <= s.offset && s.offset + u64::from(s.size) - 1 <= r.last),
                    "{name} at {seconds} s: {s:?} is not read"
                );
            }
            if rank + 1 < samples.len() {
                out_of_order += 1;
            }
        }
        assert_eq!(
            out_of_order > 0,
            reordered,
            "{name}: {out_of_order} plans end out of order"
        );

        for seconds in [3.0, 100.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                frame_plan(track, seconds, 1 << 20),
                Err(FrameError::PastEnd { duration_secs: 3.0 }),
                "{name} at {seconds} s"
            );
        }
        assert_eq!(
            frame_plan(track, 2.99, 100),
            Err(FrameError::TooLarge),
            "{name}"
        );
    }
}

#[test]
fn frames_of_other_codecs_and_of_audio() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<&str>, FrameError)> = vec![
        (
            "mpeg4.mp4",
            args(&[&VIDEO, &["-c:v", "mpeg4"]]),
            FrameError::Codec("mp4v".into()),
        ),
        (
            "hevc.mp4",
            args(&[
                &VIDEO,
                &[
                    "-c:v",
                    "libx265",
                    "-tag:v",
                    "hvc1",
                    "-x265-params",
                    "log-level=error",
                ],
            ]),
            FrameError::Codec("hvc1".into()),
        ),
        (
            "audio.m4a",
            args(&[&AUDIO, &["-c:a", "aac"]]),
            FrameError::NoVideo,
        ),
    ];
    for (name, args, expected) in cases {
        let file = std::fs::read(make(dir.path(), name, &args)).unwrap();
        let movie: Movie = parse_movie(moov_of(&file)).unwrap();
        assert_eq!(
            movie_frame_plan(&movie, 1.0, 1 << 20),
            Err(expected),
            "{name}"
        );
    }
}
