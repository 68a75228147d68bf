//! What an organization's logo may be: a PNG or a JPEG, recognised by its
//! own bytes (never by what the uploader claims), of bounded size. No SVG:
//! it is a document that can carry script.

use serde::{Deserialize, Serialize};

/// Largest logo accepted, in bytes.
pub const LOGO_BYTES_MAX: usize = 256 * 1024;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    Png,
    Jpeg,
}

impl ImageKind {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoError {
    #[error("a logo is at most {LOGO_BYTES_MAX} bytes (this one is {0})")]
    TooLarge(usize),
    #[error("a logo is a PNG or a JPEG image (SVG and other formats are refused)")]
    NotAnImage,
    #[error("the body is a {found} image, but its Content-Type says {declared}")]
    Mislabelled { declared: String, found: &'static str },
}

/// The kind of image `bytes` are, which must be what `declared` (the
/// request's Content-Type, if any) says.
pub fn check(bytes: &[u8], declared: Option<&str>) -> Result<ImageKind, LogoError> {
    if bytes.len() > LOGO_BYTES_MAX {
        return Err(LogoError::TooLarge(bytes.len()));
    }
    // A PNG starts with its 8-byte signature and an IHDR chunk; a JPEG with SOI and a marker.
    let kind = if bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR" {
        ImageKind::Png
    } else if bytes.len() > 4 && bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        ImageKind::Jpeg
    } else {
        return Err(LogoError::NotAnImage);
    };
    if let Some(d) = declared {
        let d = d.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if d != kind.content_type() && d != "application/octet-stream" {
            return Err(LogoError::Mislabelled { declared: d, found: kind.content_type() });
        }
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        b.extend([0; 17]);
        b
    }

    #[test]
    fn png_and_jpeg_by_their_bytes_nothing_else() {
        assert_eq!(check(&png(), Some("image/png")), Ok(ImageKind::Png));
        assert_eq!(check(&png(), None), Ok(ImageKind::Png));
        assert_eq!(check(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], Some("image/jpeg; charset=binary")), Ok(ImageKind::Jpeg));
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        assert_eq!(check(svg, Some("image/png")), Err(LogoError::NotAnImage));
        assert_eq!(check(b"\x89PNG\r\n\x1a\n", Some("image/png")), Err(LogoError::NotAnImage), "a signature alone is no image");
        assert!(matches!(check(&png(), Some("image/jpeg")), Err(LogoError::Mislabelled { .. })));
        assert!(matches!(check(&png(), Some("image/svg+xml")), Err(LogoError::Mislabelled { .. })));
        let mut big = png();
        big.resize(LOGO_BYTES_MAX + 1, 0);
        assert_eq!(check(&big, Some("image/png")), Err(LogoError::TooLarge(LOGO_BYTES_MAX + 1)));
    }
}
