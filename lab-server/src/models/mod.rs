//! The server models, in the order the IO-multiplexing walkthrough takes them: first a worker
//! per connection that simply blocks (a process, a thread, a coroutine), then one thread that
//! asks the kernel which of many connections are ready (select, poll, epoll), and last io_uring,
//! where one syscall carries many operations. After them, what production servers build on
//! those: io_uring with multishot operations, io_uring with a polling kernel thread, and an epoll
//! loop per CPU.
//!
//! Every file has the same shape: a doc comment (what the model is, where it blocks, which
//! syscalls to expect per message, what production code would do instead), the [`Model`] entry,
//! and `serve`.
use crate::Model;

mod coroutine;
mod coroutine_mt;
mod epoll;
mod epoll_et;
mod epoll_reuseport;
mod io_uring;
mod io_uring_multishot;
mod io_uring_sqpoll;
mod poll;
mod process;
mod select;
mod thread;

pub use epoll_reuseport::accepted_per_thread;
/// The stack each thread of the `thread` model gets.
pub use thread::STACK_SIZE as THREAD_STACK_SIZE;

pub const ALL: &[Model] = &[
    process::MODEL,
    thread::MODEL,
    coroutine::MODEL,
    coroutine_mt::MODEL,
    select::MODEL,
    poll::MODEL,
    epoll::MODEL,
    epoll_et::MODEL,
    io_uring::MODEL,
    io_uring_multishot::MODEL,
    io_uring_sqpoll::MODEL,
    epoll_reuseport::MODEL,
];
