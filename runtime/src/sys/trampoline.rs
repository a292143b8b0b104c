//! The exec trampoline: a few hundred bytes of machine code, held in a
//! sealed memfd, through which a container's process is executed.
//!
//! Why: until it execs the user's program, a container's init (or an
//! `exec`'d process) is a clone of the runtime, and its /proc/self/exe is
//! the runtime's binary on the host. If the program it execs comes back to
//! that binary (a `#!/proc/self/exe` script: CVE-2019-5736), a process in
//! the container holds the host's binary and can write it once the runtime
//! exits. [`super::selfexe`] closes that by re-executing the whole runtime
//! from a read-only view first, which costs a second exec and start-up of
//! a large binary (~1.1 ms on the benchmark VM) on every `nrc create`.
//!
//! The trampoline closes it at the last exec instead: the container's
//! process execs the trampoline (`execveat` of the memfd), which execs the
//! program. A `#!/proc/self/exe` script then finds the trampoline, which
//! nothing can write (the memfd is sealed), and which refuses to run
//! without its marker argument. Before that exec the process is made
//! non-dumpable, so no process of the container can open its
//! /proc/<pid>/exe or fds meanwhile (the kernel makes it dumpable again at
//! exec). An exec of a tiny static image costs a fraction of a large one.
//!
//! Where it cannot serve — another architecture, a kernel that refuses to
//! execute memfds (`vm.memfd_noexec = 2`), a seccomp profile that may
//! refuse `execveat` — callers fall back to the read-only re-exec.

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TrampolineError {
    #[error("the exec trampoline exists only for x86_64")]
    Architecture,
    #[error("memfd_create for the exec trampoline: {0}")]
    Memfd(Errno),
    #[error("writing the exec trampoline into its memfd: {0}")]
    Write(Errno),
    #[error("sealing the exec trampoline: {0}")]
    Seal(Errno),
}

/// The first argument the trampoline requires (with its NUL: the code
/// compares 15 bytes).
pub const MARKER: &CStr = c"nrc-trampoline";

/// Machine code of runtime/src/sys/trampoline_x86_64.S (position
/// independent: RIP-relative data).
#[cfg(target_arch = "x86_64")]
const CODE: &[u8] = &[
    0x48, 0x8b, 0x0c, 0x24, 0x48, 0x8d, 0x54, 0xcc, 0x10, 0xb8, 0x16, 0x00, //
    0x00, 0x00, 0x48, 0x83, 0xf9, 0x03, 0x72, 0x28, 0x48, 0x8b, 0x74, 0x24, //
    0x10, 0x48, 0x8d, 0x3d, 0x78, 0x00, 0x00, 0x00, 0xb9, 0x0f, 0x00, 0x00, //
    0x00, 0xf3, 0xa6, 0x75, 0x13, 0x48, 0x8b, 0x7c, 0x24, 0x18, 0x48, 0x8d, //
    0x74, 0x24, 0x20, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xf7, 0xd8, //
    0x48, 0x83, 0xec, 0x40, 0x48, 0x8d, 0x7c, 0x24, 0x3f, 0xc6, 0x07, 0x0a, //
    0xb9, 0x0a, 0x00, 0x00, 0x00, 0x31, 0xd2, 0xf7, 0xf1, 0x80, 0xc2, 0x30, //
    0x48, 0xff, 0xcf, 0x88, 0x17, 0x85, 0xc0, 0x75, 0xf0, 0x48, 0x81, 0xef, //
    0x31, 0x00, 0x00, 0x00, 0x49, 0x89, 0xf8, 0x48, 0x8d, 0x35, 0x39, 0x00, //
    0x00, 0x00, 0xb9, 0x31, 0x00, 0x00, 0x00, 0xf3, 0xa4, 0x4c, 0x89, 0xc6, //
    0x48, 0x8d, 0x54, 0x24, 0x40, 0x4c, 0x29, 0xc2, 0xbf, 0x02, 0x00, 0x00, //
    0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00, //
    0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x6e, 0x72, 0x63, 0x2d, //
    0x74, 0x72, 0x61, 0x6d, 0x70, 0x6f, 0x6c, 0x69, 0x6e, 0x65, 0x00, 0x6e, //
    0x72, 0x63, 0x3a, 0x20, 0x65, 0x78, 0x65, 0x63, 0x20, 0x6f, 0x66, 0x20, //
    0x74, 0x68, 0x65, 0x20, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, //
    0x72, 0x20, 0x70, 0x72, 0x6f, 0x63, 0x65, 0x73, 0x73, 0x20, 0x66, 0x61, //
    0x69, 0x6c, 0x65, 0x64, 0x3a, 0x20, 0x65, 0x72, 0x72, 0x6e, 0x6f, 0x20, //
];

/// Where the image is loaded; any address above mmap_min_addr would do.
const BASE: u64 = 0x40_0000;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
/// PT_LOAD for the file, PT_GNU_STACK for a non-executable stack.
const PHDRS: usize = 2;
const CODE_OFFSET: usize = EHDR_SIZE + PHDRS * PHDR_SIZE;

/// The trampoline as an ELF executable: header, two program headers, code.
#[cfg(target_arch = "x86_64")]
fn image() -> Vec<u8> {
    const EM_X86_64: u16 = 62;
    let total = (CODE_OFFSET + CODE.len()) as u64;
    let mut elf = Vec::with_capacity(total as usize);
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&EM_X86_64.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(BASE + CODE_OFFSET as u64).to_le_bytes()); // e_entry
    elf.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    elf.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    elf.extend_from_slice(&(PHDRS as u16).to_le_bytes());
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    program_header(&mut elf, 1, 0b101, BASE, total); // PT_LOAD, R+X
    program_header(&mut elf, 0x6474_e551, 0b110, 0, 0); // PT_GNU_STACK, RW
    elf.extend_from_slice(CODE);
    debug_assert_eq!(elf.len() as u64, total);
    elf
}

#[cfg(target_arch = "x86_64")]
fn program_header(elf: &mut Vec<u8>, kind: u32, flags: u32, vaddr: u64, size: u64) {
    elf.extend_from_slice(&kind.to_le_bytes());
    elf.extend_from_slice(&flags.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&vaddr.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&vaddr.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
}

/// The trampoline, loaded into a sealed memfd (close-on-exec).
#[derive(Debug)]
pub struct Trampoline {
    fd: OwnedFd,
}

impl Trampoline {
    /// This process's trampoline, made on first use. An error (kept) means
    /// the trampoline cannot serve here.
    pub fn shared() -> Result<&'static Trampoline, TrampolineError> {
        static SHARED: OnceLock<Result<Trampoline, TrampolineError>> = OnceLock::new();
        SHARED
            .get_or_init(Trampoline::new)
            .as_ref()
            .map_err(Clone::clone)
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn new() -> Result<Trampoline, TrampolineError> {
        Err(TrampolineError::Architecture)
    }

    #[cfg(target_arch = "x86_64")]
    pub fn new() -> Result<Trampoline, TrampolineError> {
        let fd = memfd()?;
        let image = image();
        let mut done = 0;
        while done < image.len() {
            match nix::unistd::write(&fd, &image[done..]) {
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(TrampolineError::Write(e)),
            }
        }
        let seals = SealFlag::F_SEAL_SEAL
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE;
        nix::fcntl::fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(seals))
            .map_err(TrampolineError::Seal)?;
        Ok(Trampoline { fd })
    }

    /// Execute `program` with `args` (args[0] included) and `env` through
    /// the trampoline. Returns only the error of the exec of the
    /// trampoline itself; a failing exec of `program` ends the process
    /// with status 127 and a message on its stderr.
    pub fn exec(&self, program: &CStr, args: &[CString], env: &[CString]) -> Errno {
        // The trampoline's own argv[0], its marker, then the program's.
        let mut argv: Vec<*const libc::c_char> = Vec::with_capacity(args.len() + 4);
        argv.push(MARKER.as_ptr());
        argv.push(MARKER.as_ptr());
        argv.push(program.as_ptr());
        argv.extend(args.iter().map(|a| a.as_ptr()));
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: execveat with our open memfd, an empty path and
        // AT_EMPTY_PATH, and NULL-terminated arrays of pointers to strings
        // that outlive the call; it returns only on failure.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                self.fd.as_raw_fd(),
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        Errno::last()
    }

    /// The memfd holding the image (tests look at it).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A close-on-exec, sealable memfd that may be executed. Kernels since 6.3
/// want MFD_EXEC said (under `vm.memfd_noexec = 1` a memfd is otherwise
/// made non-executable; under 2, MFD_EXEC is refused and so are we); older
/// ones do not know the flag (EINVAL).
fn memfd() -> Result<OwnedFd, TrampolineError> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create with a NUL-terminated name and flags; it
        // returns a new fd or -1.
        let fd = unsafe { libc::memfd_create(c"nrc:exec-trampoline".as_ptr(), flags) };
        // SAFETY: a fresh fd from memfd_create, owned by nobody else.
        Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
    };
    match create(base | MFD_EXEC) {
        Err(Errno::EINVAL) => create(base),
        other => other,
    }
    .map_err(TrampolineError::Memfd)
}

/// Mark this process non-dumpable: processes of its user (a container's,
/// once the identity is switched) cannot open its /proc/<pid>/exe, fds or
/// memory. The exec that follows resets it.
pub fn make_undumpable() -> Result<(), Errno> {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument; no memory is involved.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    fn run(t: &Trampoline, args: &[&str]) -> std::process::Output {
        // Exec through /proc/self/fd of the child: the child's copy of the
        // fd table holds the memfd until the exec replaces it.
        Command::new(format!("/proc/self/fd/{}", t.fd().as_raw_fd()))
            .args(args)
            .env_clear()
            .env("TRAMPOLINE_TEST", "kept")
            .output()
            .expect("run the trampoline")
    }

    #[test]
    fn it_execs_the_program_with_its_argv_and_environment() {
        let t = Trampoline::new().unwrap();
        let script = "tr '\\0' ' ' < /proc/$$/cmdline; echo \"$0 $TRAMPOLINE_TEST\"";
        let out = run(
            &t,
            &[
                "nrc-trampoline",
                "/bin/sh",
                "shell-argv0",
                "-c",
                script,
                "dollar0",
            ],
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("shell-argv0 -c {script} dollar0 dollar0 kept\n")
        );
    }

    #[test]
    fn exec_passes_the_program_its_argv_and_environment() {
        let t = Trampoline::new().unwrap();
        let args = [
            c"shell-argv0",
            c"-c",
            c"echo \"$0 $TRAMPOLINE_TEST\"",
            c"dollar0",
        ]
        .map(CString::from);
        let env = [CString::from(c"TRAMPOLINE_TEST=through-exec")];
        let mut cmd = Command::new("/bin/false");
        // SAFETY: the closure runs in the forked child and only calls
        // execveat (async-signal-safe); the vectors were built before fork.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                Err(std::io::Error::from_raw_os_error(
                    t.exec(c"/bin/sh", &args, &env) as i32,
                ))
            });
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "dollar0 through-exec\n"
        );
    }

    #[test]
    fn a_failed_exec_is_reported_with_its_errno_and_status_127() {
        let t = Trampoline::new().unwrap();
        let out = run(&t, &["nrc-trampoline", "/no/such/program", "x"]);
        assert_eq!(out.status.code(), Some(127));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "nrc: exec of the container process failed: errno 2\n"
        );
    }

    #[test]
    fn without_its_marker_it_refuses_to_run() {
        let t = Trampoline::new().unwrap();
        // As the interpreter of a `#!/proc/self/exe` script: argv[1] is
        // the script's path.
        for args in [
            &["/evil.sh"][..],
            &["nrc-trampolinX", "/bin/true", "true"],
            &["nrc-trampoline2", "/bin/true", "true"],
            &[],
        ] {
            let out = run(&t, args);
            assert_eq!(out.status.code(), Some(127), "{args:?}: {out:?}");
            assert!(out.status.signal().is_none());
            assert!(
                String::from_utf8_lossy(&out.stderr).ends_with("errno 22\n"),
                "{args:?}: {out:?}"
            );
        }
    }

    #[test]
    fn the_image_cannot_be_written() {
        let t = Trampoline::new().unwrap();
        let path = format!("/proc/self/fd/{}", t.fd().as_raw_fd());
        let before = std::fs::read(&path).unwrap();
        assert_eq!(before, image());
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"\x7fELF hostile"));
        let e = written.expect_err("a sealed memfd took a write");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        assert!(std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    /// CODE is what the assembler makes of trampoline_x86_64.S.
    #[test]
    fn the_code_matches_its_assembly_source() {
        let dir = std::env::temp_dir().join(format!("nrc-trampoline-asm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sys/trampoline_x86_64.S");
        let object = dir.join("t.o");
        let raw = dir.join("t.bin");
        let ok = Command::new("cc")
            .args(["-c", source, "-o"])
            .arg(&object)
            .status()
            .expect("cc (gcc) to assemble the trampoline")
            .success()
            && Command::new("objcopy")
                .args(["-O", "binary", "-j", ".text"])
                .arg(&object)
                .arg(&raw)
                .status()
                .expect("objcopy")
                .success();
        let assembled = std::fs::read(&raw);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(ok, "assembling {source}");
        assert_eq!(assembled.unwrap(), CODE);
    }
}
