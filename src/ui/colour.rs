//! A tenant's colours as CSS: the text on them is chosen for contrast
//! (WCAG 2 ratios), so any primary or background colour stays readable in
//! light and in dark mode.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
/// The pages' text colour (light mode) and card colour (dark mode).
const INK: Rgb = Rgb(0x11, 0x18, 0x27);
const DARK_CARD: Rgb = Rgb(0x1e, 0x29, 0x3b);
const DARK_INK: Rgb = Rgb(0xf1, 0xf5, 0xf9);

impl Rgb {
    /// `#rgb` or `#rrggbb`.
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
        let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        match hex.len() {
            3 => Some(Rgb(digit(0)? * 17, digit(1)? * 17, digit(2)? * 17)),
            6 => Some(Rgb(pair(0)?, pair(2)?, pair(4)?)),
            _ => None,
        }
    }

    fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// The WCAG contrast ratio of two colours (1 to 21).
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// White or ink, whichever reads better on `self`.
    fn text_on(self) -> Rgb {
        if self.contrast(WHITE) >= self.contrast(INK) {
            WHITE
        } else {
            INK
        }
    }
}

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Buttons in the primary colour (in both modes), with readable text;
/// links in it where it reads on the card (4.5:1), else in the text colour.
pub fn primary(p: Rgb) -> String {
    let fg = p.text_on();
    let light_link = if p.contrast(WHITE) >= 4.5 { p } else { INK };
    let dark_link = if p.contrast(DARK_CARD) >= 4.5 {
        p
    } else {
        DARK_INK
    };
    format!(
        ":root{{--accent:{p};--accent-fg:{fg};--link:{light_link};--focus:{p}}}\n\
         @media (prefers-color-scheme:dark){{:root{{--accent:{p};--accent-fg:{fg};--link:{dark_link};--focus:{dark_link}}}}}"
    )
}

/// The page background in light mode (dark mode keeps its own), with the
/// brand name and footer links in whichever text colour reads on it.
pub fn background(b: Rgb) -> String {
    let on = b.text_on();
    format!(
        "@media (prefers-color-scheme:light){{:root{{--bg:{b}}}body>header,footer a{{color:{on}}}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_colours_parse_and_nothing_else() {
        assert_eq!(Rgb::parse("#0a7d4f"), Some(Rgb(0x0a, 0x7d, 0x4f)));
        assert_eq!(Rgb::parse("#FFF"), Some(WHITE));
        for bad in ["0a7d4f", "#0a7d4", "#ggg", "red", "#0a7d4f;}", "#ü12", ""] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn text_on_a_colour_is_readable() {
        assert_eq!(Rgb::parse("#ffd60a").unwrap().text_on(), INK);
        assert_eq!(Rgb::parse("#1d4ed8").unwrap().text_on(), WHITE);
        assert!((WHITE.contrast(Rgb(0, 0, 0)) - 21.0).abs() < 1e-9);
        // A pale primary never becomes link text on white.
        assert!(primary(Rgb::parse("#ffd60a").unwrap()).contains("--link:#111827"));
    }
}
