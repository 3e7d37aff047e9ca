//! Decoded pictures as the engines pass them on: the image engine decodes
//! and encodes them, the video decoder makes them. A module of its own so
//! that neither engine depends on the other.

/// An 8-bit interleaved image: 3 channels (RGB) or 4 (RGBA, straight alpha).
#[derive(Debug, Clone)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Pixels {
    /// Drops an alpha channel that is opaque everywhere.
    pub fn drop_opaque_alpha(self) -> Pixels {
        if self.channels == 4 && self.data.chunks_exact(4).all(|p| p[3] == 255) {
            let data = self
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            return Pixels {
                channels: 3,
                data,
                ..self
            };
        }
        self
    }
}
