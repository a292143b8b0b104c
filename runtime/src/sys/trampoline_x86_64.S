# The exec trampoline of sys/trampoline.rs, x86_64. Its machine code is
# CODE there; a unit test assembles this file and compares.
#
#   trampoline nrc-trampoline PROGRAM ARGV0 ARGS...
#
# execve(PROGRAM, [ARGV0, ARGS...], envp). Called any other way (as the
# interpreter of a `#!/proc/self/exe` script, say), or when execve fails,
# it writes "nrc: exec of the container process failed: errno N" to fd 2
# and exits 127. No libc, no stack use beyond the message buffer.
	.text
	.globl _start
_start:
	mov	(%rsp), %rcx		# argc
	lea	16(%rsp,%rcx,8), %rdx	# envp = &argv[argc + 1]
	mov	$22, %eax		# EINVAL unless the call is ours
	cmp	$3, %rcx
	jb	report
	mov	16(%rsp), %rsi		# argv[1]: the marker
	lea	marker(%rip), %rdi
	mov	$marker_len, %ecx
	repe cmpsb
	jne	report
	mov	24(%rsp), %rdi		# argv[2]: the program
	lea	32(%rsp), %rsi		# &argv[3]: its argv
	mov	$59, %eax		# execve
	syscall
	neg	%eax
report:
	sub	$64, %rsp
	lea	63(%rsp), %rdi		# the message ends at 63(%rsp)
	movb	$10, (%rdi)
	mov	$10, %ecx
1:	xor	%edx, %edx
	div	%ecx
	add	$48, %dl
	dec	%rdi
	mov	%dl, (%rdi)
	test	%eax, %eax
	jnz	1b
	sub	$prefix_len, %rdi
	mov	%rdi, %r8
	lea	prefix(%rip), %rsi
	mov	$prefix_len, %ecx
	rep movsb
	mov	%r8, %rsi
	lea	64(%rsp), %rdx
	sub	%r8, %rdx		# length
	mov	$2, %edi
	mov	$1, %eax		# write
	syscall
	mov	$127, %edi
	mov	$231, %eax		# exit_group
	syscall
marker:
	.asciz	"nrc-trampoline"
	.set	marker_len, . - marker
prefix:
	.ascii	"nrc: exec of the container process failed: errno "
	.set	prefix_len, . - prefix
