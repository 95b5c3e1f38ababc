//! QR codes drawn on the server as inline SVG (for TOTP enrolment): no image
//! service, no script, nothing for the page's CSP to allow.

use qrcode::{Color, EcLevel, QrCode};

use crate::error::AppError;

/// Light modules around the code, as the QR specification asks.
const QUIET_ZONE: usize = 4;

/// `text` as a QR code: an `<svg>` element with one path of dark modules on a
/// white square, scaled by its `viewBox`.
pub fn svg(text: &str) -> Result<String, AppError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| AppError::Internal(format!("QR code: {e}")))?;
    let width = code.width();
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="240" height="240" shape-rendering="crispEdges" role="img" aria-label="QR code for your authenticator app"><rect width="{size}" height="{size}" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_a_quiet_zone() {
        let svg = svg("otpauth://totp/Sentinel:a%40example.org?secret=ABC").unwrap();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert!(
            svg.contains("M4 4h1v1h-1z"),
            "a finder pattern starts at the quiet zone"
        );
        assert!(!svg.contains("M0 0"));
        assert!(!svg.contains("<script"));
    }
}
