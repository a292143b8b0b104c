use super::*;

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("profile parses")
}

fn err(json: &str) -> String {
    compile(&profile(json)).unwrap_err().to_string()
}

#[test]
fn an_allow_list_is_one_filter() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    assert_eq!(p.filter_count(), 1);
}

#[test]
fn each_other_action_adds_a_filter() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
            "syscalls":[
              {"names":["read"],"action":"SCMP_ACT_ALLOW"},
              {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
              {"names":["chmod"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
              {"names":["uname"],"action":"SCMP_ACT_LOG"},
              {"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}
            ]}"#,
    ))
    .unwrap();
    // The default filter, ERRNO(38) and LOG; ERRNO(1) is the default.
    assert_eq!(p.filter_count(), 3);
}

#[test]
fn a_block_list_needs_no_default_filter() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"},
                        {"names":["ptrace"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
    ))
    .unwrap();
    assert_eq!(p.filter_count(), 2);
}

#[test]
fn unknown_names_are_skipped_and_conditions_compile() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO",
            "syscalls":[
              {"names":["arm_fadvise64_64","read"],"action":"SCMP_ACT_ALLOW"},
              {"names":["personality"],"action":"SCMP_ACT_ALLOW",
               "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
              {"names":["clone"],"action":"SCMP_ACT_ALLOW",
               "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}
            ]}"#,
    ))
    .unwrap();
    assert_eq!(p.filter_count(), 1);
}

#[test]
fn bad_profiles_are_refused_with_the_reason() {
    assert!(err(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).contains("listener"));
    assert!(err(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#
    )
    .contains("listener"));
    assert!(
        err(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_AARCH64"]}"#)
            .contains("x86_64")
    );
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO",
            "args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(e.contains("syscalls[0]") && e.contains("index 6"), "{e}");
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO",
            "args":[{"index":0,"value":1,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    assert!(e.contains("valueTwo"), "{e}");
}

#[test]
fn which_profiles_let_a_syscall_through_whatever_its_arguments() {
    let cases = [
        (r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#, true),
        (r#"{"defaultAction":"SCMP_ACT_LOG"}"#, true),
        (r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#, false),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","execveat"],"action":"SCMP_ACT_ALLOW"}]}"#,
            true,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve"],"action":"SCMP_ACT_ALLOW"}]}"#,
            false,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execveat"],"action":"SCMP_ACT_ALLOW",
                "args":[{"index":4,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
            false,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["execveat"],"action":"SCMP_ACT_ERRNO"}]}"#,
            false,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["execveat"],"action":"SCMP_ACT_KILL",
                "args":[{"index":4,"value":4096,"op":"SCMP_CMP_MASKED_EQ","valueTwo":4096}]}]}"#,
            false,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
            true,
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(
            passes_unconditionally(&profile(json), "execveat"),
            expected,
            "{json}"
        );
    }
}
