//! Few statement shapes for statements over lists of varying length.
//!
//! sqlx prepares every distinct statement text once per pooled connection
//! and keeps it (sqlx up to 100 per connection; the database too), so an
//! `IN (…)` list or a `VALUES` list of every length from 1 to 500 fills each
//! connection's cache with large statements of every length (issue 22:
//! +40 MB resident). A
//! list padded to a power of two by repeating its last element has one of a
//! handful of shapes; a repeated id in an `IN` list, or a repeated row that
//! an `UPDATE … FROM (VALUES …)` matches twice, changes nothing.

/// Ids per `IN (…)` list: lists longer than this are read in chunks, each
/// padded (a power of two, so a full chunk needs no padding).
pub(crate) const IN_LIST_CHUNK: usize = 512;

/// The items of `chunk` followed by its last item repeated up to the next
/// power of two (nothing for an empty chunk).
pub(crate) fn padded<T>(chunk: &[T]) -> impl Iterator<Item = &T> {
    let padding = chunk.len().next_power_of_two().saturating_sub(chunk.len());
    chunk
        .iter()
        .chain(chunk.last().into_iter().cycle().take(padding))
}

#[cfg(test)]
mod tests {
    use super::padded;

    #[test]
    fn a_list_is_padded_with_its_last_item_to_a_power_of_two() {
        let padded_of = |items: &[u32]| padded(items).copied().collect::<Vec<_>>();
        assert_eq!(padded_of(&[]), Vec::<u32>::new());
        assert_eq!(padded_of(&[7]), vec![7]);
        assert_eq!(padded_of(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded_of(&[1, 2, 3, 4]), vec![1, 2, 3, 4]);
        assert_eq!(padded_of(&[1, 2, 3, 4, 5]).len(), 8);
    }
}
