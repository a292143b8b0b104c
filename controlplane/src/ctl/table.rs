//! Tables as kubectl prints them: upper-case headers, every column padded
//! to its widest cell, three spaces between columns, no trailing spaces.

/// Render `header` and `rows` as aligned text, one line per row.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("   ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_like_kubectl() {
        let rows = vec![
            vec!["web".to_string(), "1/1".into(), "Running".into()],
            vec!["a-much-longer-name".to_string(), "0/2".into(), "".into()],
        ];
        let text = render(&["name", "ready", "status"], &rows);
        assert_eq!(
            text,
            "NAME                 READY   STATUS\n\
             web                  1/1     Running\n\
             a-much-longer-name   0/2\n"
        );
    }
}
