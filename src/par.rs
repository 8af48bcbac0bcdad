//! Work split over the machine's cores with scoped threads (no pool kept): the coverage's
//! placing and overlays, decoding a store's rows, preparing an export's rows.

/// `items.iter().filter_map(f)`, in order, split over the machine's cores, each thread given
/// at least `min_per_thread` items (below that one thread is quicker than starting others).
pub(crate) fn filter_map<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> Option<R> + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len() / min_per_thread.max(1))
        .max(1);
    if threads == 1 {
        return items.iter().filter_map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().filter_map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for part in parts {
            match part.join() {
                Ok(mut rs) => out.append(&mut rs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}
