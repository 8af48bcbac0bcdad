//! Maps of the report drawn as inline SVG (the namespace-free form HTML5 allows): a local
//! equirectangular projection for drawing only, scaled by cos(latitude) at the map's centre
//! (at a province's size it differs from a conformal projection by well under a pixel),
//! a legend, a scale bar measured geodesically at the centre, and the attribution.

use std::fmt::Write as _;

use geo::{Coord, Distance, Geodesic, MultiPolygon, Point, Rect};

/// Escapes text for HTML and SVG (element content and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where lon/lat goes on a map of `width` x `height` units.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    centre: Coord<f64>,
    /// Units per degree of latitude.
    scale: f64,
    cos: f64,
    pub width: f64,
    pub height: f64,
}

impl Frame {
    /// A frame of `width` units showing `rect` whole, with a margin, at most `max_height` high.
    pub fn fit(rect: Rect<f64>, width: f64, max_height: f64) -> Self {
        const MARGIN: f64 = 0.04;
        let centre = rect.center();
        let cos = centre.y.to_radians().cos().max(0.01);
        let dx = (rect.width() * cos).max(1e-9);
        let dy = rect.height().max(1e-9);
        let inner = 1.0 - 2.0 * MARGIN;
        let scale = (width * inner / dx).min(max_height * inner / dy);
        let height = (dy * scale / inner).clamp(width * 0.3, max_height);
        Self {
            centre,
            scale,
            cos,
            width,
            height,
        }
    }

    /// Map units of a lon/lat position.
    pub fn xy(&self, c: Coord<f64>) -> (f64, f64) {
        (
            self.width / 2.0 + (c.x - self.centre.x) * self.cos * self.scale,
            self.height / 2.0 - (c.y - self.centre.y) * self.scale,
        )
    }

    /// An SVG path of `area` (rings closed; vertices closer than half a unit to the last one
    /// kept are dropped, so a detailed boundary stays a small path).
    pub fn path(&self, area: &MultiPolygon<f64>) -> String {
        let mut d = String::new();
        for polygon in &area.0 {
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                let mut last: Option<(f64, f64)> = None;
                let n = ring.0.len();
                for (i, c) in ring.0.iter().enumerate() {
                    let (x, y) = self.xy(*c);
                    let keep = match last {
                        None => true,
                        Some((lx, ly)) => i + 1 == n || (x - lx).hypot(y - ly) >= 0.5,
                    };
                    if keep {
                        let _ =
                            write!(d, "{}{x:.1},{y:.1}", if last.is_none() { 'M' } else { 'L' });
                        last = Some((x, y));
                    }
                }
                if last.is_some() {
                    d.push('Z');
                }
            }
        }
        d
    }

    /// Metres per map unit along the parallel through the centre (geodesic).
    fn metres_per_unit(&self) -> f64 {
        let half = 0.05;
        let a = Point::new(self.centre.x - half, self.centre.y);
        let b = Point::new(self.centre.x + half, self.centre.y);
        Geodesic.distance(a, b) / (2.0 * half * self.cos * self.scale)
    }
}

/// How a legend entry is drawn.
#[derive(Debug, Clone)]
pub enum Symbol {
    /// A filled area: fill (a colour or a pattern reference) and outline.
    Area { fill: String, stroke: String },
    /// A service marker.
    Dot(&'static str),
    /// An uncovered settlement.
    Triangle(&'static str),
    /// An uncovered worksite.
    Square(&'static str),
    /// A suggested site.
    Site,
}

/// A symbol centred at `(x, y)`, with a title (its tooltip).
pub fn symbol(out: &mut String, s: &Symbol, x: f64, y: f64, title: Option<&str>) {
    let title = title.map_or(String::new(), |t| format!("<title>{}</title>", escape(t)));
    match s {
        Symbol::Area { fill, stroke } => {
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="16" height="11" fill="{fill}" stroke="{stroke}"/>"#,
                x - 8.0,
                y - 5.5
            );
        }
        Symbol::Dot(colour) => {
            let _ = write!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{colour}" stroke="#ffffff" stroke-width="1.5">{title}</circle>"##
            );
        }
        Symbol::Triangle(colour) => {
            let _ = write!(
                out,
                r##"<path d="M{:.1},{:.1}L{:.1},{:.1}L{:.1},{:.1}Z" fill="{colour}" stroke="#40001f" stroke-width="1">{title}</path>"##,
                x,
                y - 5.5,
                x + 5.0,
                y + 3.5,
                x - 5.0,
                y + 3.5
            );
        }
        Symbol::Square(colour) => {
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{colour}" stroke="#2e2410" stroke-width="1">{title}</rect>"##,
                x - 3.5,
                y - 3.5
            );
        }
        Symbol::Site => {
            let _ = write!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="#111111" stroke="#ffffff" stroke-width="2">{title}</circle>"##
            );
        }
    }
}

/// A numbered suggested site.
pub fn site(out: &mut String, rank: usize, x: f64, y: f64, title: &str) {
    let _ = write!(
        out,
        r##"<g><title>{}</title><circle cx="{x:.1}" cy="{y:.1}" r="10" fill="#111111" stroke="#ffffff" stroke-width="2"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="bold" fill="#ffffff">{rank}</text></g>"##,
        escape(title),
        y + 4.2
    );
}

/// A label with a white halo.
pub fn label(out: &mut String, text: &str, x: f64, y: f64, size: f64) {
    let _ = write!(
        out,
        r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="{size}" font-weight="bold" fill="#2f3b22" stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">{}</text>"##,
        escape(text)
    );
}

/// A round length near `target` metres: 1, 2 or 5 times a power of ten.
fn round_length(target: f64) -> f64 {
    let power = 10_f64.powf(target.max(1.0).log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * power)
        .find(|l| *l <= target)
        .unwrap_or(power)
}

/// The whole map: `body` (already projected with `frame`) clipped to the frame, then the
/// scale bar, the attribution and the legend below it. `id` makes its clip path unique in
/// the page; `defs` are pattern definitions the body refers to.
pub fn map(
    frame: &Frame,
    id: &str,
    title: &str,
    defs: &str,
    body: &str,
    legend: &[(Symbol, String)],
    attribution: &str,
) -> String {
    const ROW: f64 = 20.0;
    let per_row = 3_usize;
    let rows = legend.len().div_ceil(per_row);
    let legend_height = f64::from(u32::try_from(rows).unwrap_or(0)) * ROW + 12.0;
    let (width, height) = (frame.width, frame.height);
    let total = height + legend_height;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="map" viewBox="0 0 {width:.0} {total:.0}" role="img" aria-label="{t}" font-family="sans-serif"><title>{t}</title><defs><clipPath id="clip-{id}"><rect width="{width:.0}" height="{height:.0}"/></clipPath>{defs}</defs><rect width="{width:.0}" height="{height:.0}" fill="#eef3f7"/><g clip-path="url(#clip-{id})">{body}</g><rect width="{width:.0}" height="{height:.0}" fill="none" stroke="#555555"/>"##,
        t = escape(title)
    );
    // Scale bar, bottom left.
    let per_unit = frame.metres_per_unit();
    let metres = round_length(width / 5.0 * per_unit);
    let length = metres / per_unit;
    let label = if metres >= 1000.0 {
        format!("{} km", metres / 1000.0)
    } else {
        format!("{metres} m")
    };
    let (x0, y0) = (16.0, height - 16.0);
    let _ = write!(
        out,
        r##"<g class="scale"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="30" fill="#ffffff" fill-opacity="0.8"/><rect x="{x0:.1}" y="{y0:.1}" width="{half:.1}" height="5" fill="#222222"/><rect x="{mid:.1}" y="{y0:.1}" width="{half:.1}" height="5" fill="#ffffff" stroke="#222222"/><text x="{x0:.1}" y="{:.1}" font-size="12" fill="#222222">0</text><text x="{end:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#222222">{label}</text><text x="{:.1}" y="{:.1}" font-size="12" fill="#222222">N ↑</text></g>"##,
        x0 - 8.0,
        y0 - 20.0,
        length + 52.0,
        y0 - 5.0,
        y0 - 5.0,
        x0 + length + 8.0,
        y0 + 5.0,
        half = length / 2.0,
        mid = x0 + length / 2.0,
        end = x0 + length,
    );
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#333333" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
        width - 8.0,
        height - 8.0,
        escape(attribution)
    );
    // Legend.
    let column = width / 3.0;
    for (i, (s, text)) in legend.iter().enumerate() {
        let (row, col) = (i / per_row, i % per_row);
        let x = 20.0 + f64::from(u32::try_from(col).unwrap_or(0)) * column;
        let y = height + 16.0 + f64::from(u32::try_from(row).unwrap_or(0)) * ROW;
        symbol(&mut out, s, x, y, None);
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" fill="#222222">{}</text>"##,
            x + 14.0,
            y + 4.5,
            escape(text)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_keeps_the_shape_of_a_square_kilometre_grid() {
        // 0.1° of latitude and 0.1/cos(45.7°) of longitude are about as long on the ground.
        let lat: f64 = 45.7;
        let rect = Rect::new(
            geo::coord! { x: 12.0, y: lat - 0.05 },
            geo::coord! { x: 12.0 + 0.1 / lat.to_radians().cos(), y: lat + 0.05 },
        );
        let f = Frame::fit(rect, 500.0, 1000.0);
        let (x0, y0) = f.xy(rect.min());
        let (x1, y1) = f.xy(rect.max());
        assert!(((x1 - x0) / (y0 - y1) - 1.0).abs() < 1e-9);
        // The scale at the centre is the geodesic one within a percent.
        let ground = Geodesic.distance(
            Point::from(rect.min()),
            Point::new(rect.min().x, rect.max().y),
        );
        assert!((f.metres_per_unit() * (y0 - y1) / ground - 1.0).abs() < 0.01);
    }

    #[test]
    fn scale_bar_lengths_are_round() {
        for (target, round) in [
            (7300.0, 5000.0),
            (2100.0, 2000.0),
            (1999.0, 1000.0),
            (640.0, 500.0),
        ] {
            assert!((round_length(target) - round).abs() < 1e-9, "{target}");
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
