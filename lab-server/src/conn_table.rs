//! A table of connections indexed by their fd (or, for io_uring's registered files, their
//! slot): the kernel hands out the lowest free fd, so the table stays as dense as the
//! connections are, and finding a connection from an event is one index.

/// Connections by fd. Slots past the highest connection are trimmed, so [`len`](Self::len) is
/// one past the highest fd in use (select's `nfds`).
pub struct FdTable<T> {
    slots: Vec<Option<T>>,
}

impl<T> Default for FdTable<T> {
    fn default() -> Self {
        FdTable { slots: Vec::new() }
    }
}

impl<T> FdTable<T> {
    /// Puts `value` at `fd` (replacing whatever was there) and returns it.
    pub fn insert(&mut self, fd: i32, value: T) -> &mut T {
        let slot = fd as usize;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot].insert(value)
    }

    pub fn get_mut(&mut self, fd: i32) -> Option<&mut T> {
        self.slots.get_mut(fd as usize)?.as_mut()
    }

    /// Takes the value at `fd` out (dropping a `Conn` closes its socket), and trims the table.
    pub fn remove(&mut self, fd: i32) -> Option<T> {
        let value = self.slots.get_mut(fd as usize)?.take();
        while let Some(None) = self.slots.last() {
            self.slots.pop();
        }
        value
    }

    /// One past the highest fd in the table.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every connection, in fd order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn len_is_one_past_the_highest_fd() {
        let mut table = FdTable::default();
        table.insert(5, 'a');
        table.insert(9, 'b');
        assert_eq!(table.len(), 10);
        assert_eq!(table.remove(9), Some('b'));
        assert_eq!(table.len(), 6);
        assert_eq!(table.values().collect::<Vec<_>>(), [&'a']);
        assert_eq!(table.remove(7), None);
        assert_eq!(table.remove(5), Some('a'));
        assert_eq!(table.len(), 0);
    }
}
