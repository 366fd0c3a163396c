using System.Net;
using System.Net.Sockets;
using System.Text;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>
/// Hostile programs, each run on each backend, each with the outcome it must get and what it must not
/// have achieved; after every one the host is checked (<see cref="SandboxFixture.AssertHostUntouched"/>).
/// </summary>
[Collection(SandboxCollection.Name)]
public sealed class HostileSuite(SandboxFixture fixture)
{
    /// <summary>
    /// One hostile program: python source (run as main.py), what it gets, and what its result must show.
    /// <paramref name="OrOutcome"/>: a second acceptable outcome, where two limits race (a fork bomb's copies fill
    /// its memory as fast as they exhaust its time).
    /// </summary>
    public sealed record Case(string Name, string Python, SandboxOutcome Outcome, Action<SandboxResult, Context> Check,
        byte[]? Stdin = null, SandboxLimits? Limits = null, SandboxOutcome? OrOutcome = null);

    /// <summary>What a check may look at beside the result.</summary>
    public sealed record Context(SandboxFixture Fixture, TcpListener Listener, int ListenerPort, string Backend);

    private static string Out(SandboxResult r) => r.Stdout.Text;

    private static void Says(SandboxResult r, string expected) =>
        Assert.True(r.Stdout.Text.Contains(expected, StringComparison.Ordinal), $"stdout lacks '{expected}' (exit {r.ExitCode}, signal {r.Signal}).\nstdout: {SandboxText.TrimForModel(r.Stdout.Text, 2000)}\nstderr: {SandboxText.TrimForModel(r.Stderr.Text, 2000)}");

    private static void Exit(SandboxResult r, int code)
    {
        Assert.True(r.ExitCode == code, $"exit code {r.ExitCode?.ToString() ?? "none"} (signal {r.Signal?.ToString() ?? "none"}), expected {code}.\nstdout: {SandboxText.TrimForModel(r.Stdout.Text, 2000)}\nstderr: {SandboxText.TrimForModel(r.Stderr.Text, 2000)}");
    }

    public static IReadOnlyList<Case> Cases { get; } =
    [
        new("fork_bomb", """
            import os
            while True:
                try: os.fork()
                except OSError: pass
            """, SandboxOutcome.Timeout, (r, _) => Assert.Null(r.ExitCode), OrOutcome: SandboxOutcome.MemoryLimit),
        new("memory_bomb", """
            chunks = []
            while True:
                chunks.append(b'x' * (8 << 20))
            """, SandboxOutcome.MemoryLimit, (r, _) => Assert.NotEqual(0, r.ExitCode ?? -1)),
        new("one_huge_allocation", "data = b'x' * (1 << 30)\nprint(len(data))", SandboxOutcome.MemoryLimit, (r, _) => Assert.DoesNotContain("1073741824", Out(r))),
        new("fill_scratch_with_one_file", """
            with open('/work/big', 'wb') as f:
                while True:
                    f.write(b'x' * 65536)
            """, SandboxOutcome.Ok, (r, _) =>
            {
                Exit(r, 1);
                Assert.True(r.Stderr.Text.Contains("File too large") || r.Stderr.Text.Contains("No space left on device"), r.Stderr.Text);
            }),
        new("fill_scratch_with_many_files", """
            import errno
            n = 0
            try:
                while True:
                    with open(f'/work/f{n}', 'wb') as f:
                        f.write(b'x' * (4 << 20))
                    n += 1
            except OSError as e:
                print('stopped', errno.errorcode[e.errno], n)
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "stopped E"); }),
        new("fill_tmp", """
            import errno
            n = 0
            try:
                while True:
                    with open(f'/tmp/f{n}', 'wb') as f:
                        f.write(b'x' * (4 << 20))
                    n += 1
            except OSError as e:
                print('stopped', errno.errorcode[e.errno], n)
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "stopped E"); }),
        new("endless_output", "while True:\n    print('y' * 1000)", SandboxOutcome.OutputLimit,
            (r, _) => { Assert.True(r.Stdout.Truncated); Assert.Equal(SandboxFixture.Limits.OutputBytes, r.Stdout.Bytes.Length); }),
        new("billion_lines", "import sys\nfor i in range(10**9):\n    sys.stdout.write('\\n')", SandboxOutcome.OutputLimit,
            (r, _) => { Assert.True(r.Stdout.Truncated); Assert.All(r.Stdout.Bytes, b => Assert.Equal((byte)'\n', b)); }),
        new("endless_stderr", "import sys\nwhile True:\n    sys.stderr.write('e' * 4096)", SandboxOutcome.OutputLimit,
            (r, _) => { Assert.True(r.Stderr.Truncated); Assert.False(r.Stdout.Truncated); }),
        new("stdin_flood_unread", "print('ignored')", SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "ignored"); },
            Stdin: new byte[32 << 20]),
        new("stdin_read_fully", "import sys\nprint(len(sys.stdin.buffer.read()))", SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, (4 << 20).ToString()); },
            Stdin: Enumerable.Range(0, 4 << 20).Select(i => (byte)i).ToArray()),
        new("sleep_ignoring_sigterm", """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print('sleeping', flush=True)
            time.sleep(100)
            """, SandboxOutcome.Timeout, (r, _) => { Says(r, "sleeping"); Assert.InRange(r.WallTime, TimeSpan.FromSeconds(2.9), TimeSpan.FromSeconds(8)); }),
        new("double_fork_daemon", """
            import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    for fd in range(3): os.close(fd)
                    while True:
                        time.sleep(0.05)
                        open('/work/daemon-alive', 'a').close()
                os._exit(0)
            os.wait()
            print('parent done')
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "parent done"); }),
        new("kill_everything", """
            import os, signal
            try:
                os.kill(-1, signal.SIGKILL)
                print('kill -1 sent')
            except OSError as e:
                print('kill -1 refused', e)
            for pid in range(1, 10):
                if pid != os.getpid():
                    try: os.kill(pid, signal.SIGKILL)
                    except OSError: pass
            print('still here')
            """, SandboxOutcome.Ok, (r, c) => { Says(r, "still here"); Assert.False(c.Fixture.CanaryPid <= 0); }),
        new("read_etc_shadow", """
            import os
            for path in ('/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/root/.ssh/id_rsa', '/root/.bash_history'):
                print(path, 'readable' if os.access(path, os.R_OK) and os.path.isfile(path) else 'absent')
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Assert.DoesNotContain("readable", Out(r)); Assert.Equal(5, Out(r).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); }),
        new("read_gym_store", """
            import os, glob, sys
            targets = [sys.argv[1], '/proc/1/root' + sys.argv[1], '/var/lib', '/proc/1/cwd']
            for t in targets:
                try:
                    if os.path.isdir(t): print(t, 'listed', os.listdir(t))
                    else: print(t, 'read', open(t).read())
                except OSError as e:
                    print(t, 'refused', type(e).__name__)
            """, SandboxOutcome.Ok, (r, c) =>
            {
                Exit(r, 0);
                Assert.DoesNotContain(SandboxFixture.SecretValue, Out(r));
                Assert.Equal(2, Out(r).Split('\n').Count(l => l.Contains("store.db refused")));
            }),
        new("read_other_sandboxes_scratch", """
            import os, sys
            found = []
            # Everywhere a host path could show through (the image's own /usr aside, and kernel files, some of which block on read).
            roots = ['/run', '/var', '/tmp', '/work', '/mnt', '/media', '/home', '/srv', '/opt', '/proc/1/root/run', '/proc/1/root/var']
            roots += ['/' + d for d in os.listdir('/') if d not in ('usr', 'proc', 'sys', 'dev', 'lib', 'lib64', 'bin', 'sbin')]
            for root in roots:
                for dirpath, dirs, files in os.walk(root):
                    found += [os.path.join(dirpath, f) for f in files]
            def holds_secret(path):
                try: return ('secret-of' + '-other') in open(path, errors='replace').read(1 << 20)
                except OSError: return False
            print('files', [f for f in found if holds_secret(f)])
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "files []"); }),
        new("write_outside_scratch", """
            import os
            ok = []
            for path in ('/evil', '/usr/bin/evil', '/etc/passwd', '/usr/lib/evil.so', '/proc/sysrq-trigger', '/dev/evil', '/proc/sys/kernel/hostname'):
                try:
                    with open(path, 'a') as f: f.write('x')
                    ok.append(path)
                except OSError:
                    pass
            print('written', ok)
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "written []"); }),
        new("network_egress", """
            import socket, sys
            port = int(sys.argv[2])
            results = []
            for host in ('127.0.0.1', '10.0.2.2', '172.17.0.1', '8.8.8.8'):
                try:
                    s = socket.create_connection((host, port), timeout=0.5)
                    results.append(host + ' connected')
                    s.send(b'escaped')
                except OSError as e:
                    results.append(host + ' blocked')
            try:
                socket.getaddrinfo('deb.debian.org', 80)
                results.append('dns resolved')
            except OSError:
                results.append('dns blocked')
            print(results)
            """, SandboxOutcome.Ok, (r, c) =>
            {
                Exit(r, 0);
                Assert.DoesNotContain("connected", Out(r));
                Assert.DoesNotContain("resolved", Out(r));
                Assert.False(c.Listener.Pending(), "the loopback server received a connection from inside the sandbox");
            }),
        new("ptrace_host_process", """
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            PTRACE_ATTACH = 16
            outcomes = []
            # The canary (a host process of the very uid containers run as) and this test's own process.
            for pid in (int(sys.argv[3]), int(sys.argv[4])):
                rc = libc.ptrace(PTRACE_ATTACH, pid, None, None)
                outcomes.append(f'{pid}:{"attached" if rc == 0 else "denied"}')
            print(outcomes)
            """, SandboxOutcome.Ok, (r, c) => { Exit(r, 0); Assert.DoesNotContain("attached", Out(r)); Assert.Equal(2, Out(r).Split("denied").Length - 1); }),
        new("setuid_and_capabilities", """
            import os, shutil
            attempts = []
            for call in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.seteuid(0)):
                try: call(); attempts.append('gained')
                except OSError: attempts.append('refused')
            shutil.copy('/usr/bin/python3', '/work/py')
            os.chmod('/work/py', 0o4755)
            caps = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapPrm', 'NoNewPrivs'))]
            print(attempts, os.getuid(), os.geteuid(), ''.join(caps).split())
            """, SandboxOutcome.Ok, (r, _) =>
            {
                Exit(r, 0);
                Assert.DoesNotContain("gained", Out(r));
                Says(r, "] 65534 65534 [");
                Says(r, "'CapEff:', '0000000000000000'");
            }),
        new("mount_unshare_chroot", """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
            results = {
                'mount': libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None),
                'unshare_user': libc.unshare(CLONE_NEWUSER),
                'unshare_mount': libc.unshare(CLONE_NEWNS),
                'unshare_net': libc.unshare(CLONE_NEWNET),
            }
            try:
                os.chroot('/work'); results['chroot'] = 0
            except OSError:
                results['chroot'] = -1
            print('succeeded', [k for k, v in results.items() if v == 0])
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "succeeded []"); }),
        new("proc_snooping", """
            import os
            pids = [p for p in os.listdir('/proc') if p.isdigit()]
            seen = []
            for p in pids:
                try: seen.append(open(f'/proc/{p}/cmdline', 'rb').read().replace(b'\0', b' ').decode(errors='replace'))
                except OSError: pass
            print(len(pids), seen)
            """, SandboxOutcome.Ok, (r, _) =>
            {
                Exit(r, 0);
                foreach (var word in new[] { "dotnet", "Nemotron", "dockerd", "containerd", "sleep 3600", "xunit" }) Assert.DoesNotContain(word, Out(r));
                Assert.InRange(int.Parse(Out(r).Split(' ')[0]), 1, 6);
            }),
        new("environment_secrets", """
            import os
            print(sorted(os.environ.items()))
            print(open('/proc/self/environ', 'rb').read())
            try: print(open('/proc/1/environ', 'rb').read())
            except OSError as e: print('pid1 environ refused')
            """, SandboxOutcome.Ok, (r, _) =>
            {
                Exit(r, 0);
                Assert.DoesNotContain(SandboxFixture.SecretValue, Out(r));
                Assert.DoesNotContain(SandboxFixture.SecretEnvironmentVariable, Out(r));
                Assert.DoesNotContain("DOTNET", Out(r));
            }),
        new("exhaust_file_descriptors", """
            fds = []
            try:
                while True: fds.append(open('/dev/null'))
            except OSError as e:
                print('stopped at', len(fds), e.strerror)
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "Too many open files"); Assert.InRange(int.Parse(Out(r).Split(' ')[2]), 1, SandboxFixture.Limits.OpenFiles); }),
        new("cpu_spinning_processes", """
            import os
            for _ in range(8):
                if os.fork() == 0:
                    while True: pass
            while True: pass
            """, SandboxOutcome.Timeout, (r, _) => Assert.InRange(r.WallTime, TimeSpan.Zero, TimeSpan.FromSeconds(8))),
        new("cpu_spinning_threads", """
            import threading
            def spin():
                while True: pass
            for _ in range(16): threading.Thread(target=spin, daemon=True).start()
            spin()
            """, SandboxOutcome.Timeout, (r, _) => Assert.InRange(r.WallTime, TimeSpan.Zero, TimeSpan.FromSeconds(8))),
        new("cpu_limit_single_loop", "while True: pass", SandboxOutcome.Timeout, (r, _) => Assert.Contains("CPU", r.Detail ?? ""),
            Limits: SandboxFixture.Limits with { WallTime = TimeSpan.FromSeconds(6), CpuTime = TimeSpan.FromSeconds(1) }),
        new("binary_output", "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 4)", SandboxOutcome.Ok,
            (r, _) => { Exit(r, 0); Assert.Equal(Enumerable.Range(0, 1024).Select(i => (byte)(i % 256)).ToArray(), r.Stdout.Bytes); }),
        new("invalid_utf8_output", "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe\\xc3( end')\nsys.stderr.buffer.write(b'\\x80\\x81')", SandboxOutcome.Ok,
            (r, _) => { Exit(r, 0); Assert.Contains('\uFFFD', r.Stdout.Text); Assert.StartsWith("ok ", r.Stdout.Text); Assert.Equal(new byte[] { 0x80, 0x81 }, r.Stderr.Bytes); }),
        new("segfault", "import ctypes\nctypes.string_at(0)", SandboxOutcome.Ok, (r, _) => Assert.Equal(11, r.Signal)),
        new("exit_code", "import sys\nprint('bye')\nsys.exit(3)", SandboxOutcome.Ok, (r, _) => { Exit(r, 3); Says(r, "bye"); }),
        new("devices_and_kernel", """
            import os
            print('devices', sorted(os.listdir('/dev')))
            for path in ('/dev/mem', '/dev/kmem', '/dev/sda', '/dev/vda', '/proc/kcore', '/sys/kernel'):
                try:
                    open(path, 'rb').read(1); print(path, 'read')
                except OSError:
                    print(path, 'refused')
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Assert.DoesNotContain(" read", Out(r)); }),
        new("identity_and_readonly_root", """
            import os
            print(os.getuid(), os.getgid(), os.getcwd(), os.getgroups())
            try:
                os.mkdir('/newdir'); print('root writable')
            except OSError as e:
                print('root read-only', e.errno)
            """, SandboxOutcome.Ok, (r, _) => { Exit(r, 0); Says(r, "65534 65534 /work"); Says(r, "root read-only"); }),
    ];

    public static TheoryData<string, string> CaseNames()
    {
        var data = new TheoryData<string, string>();
        // bwrap: through warm slots, as hosts run it; bwrap-cold: the path a run falls back to when no slot is warm.
        foreach (var backend in new[] { "bwrap", "bwrap-cold", "docker" })
            foreach (var c in Cases) data.Add(backend, c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task Hostile_program_gets_its_outcome_and_leaves_the_host_untouched(string backend, string name)
    {
        var hostile = Cases.Single(c => c.Name == name);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var request = new SandboxRunRequest(
            new SandboxCommand(["python3", "main.py", fixture.SecretStorePath, port.ToString(), fixture.CanaryPid.ToString(), Environment.ProcessId.ToString()], hostile.Stdin, hostile.Limits ?? SandboxFixture.Limits),
            [SandboxFile.Text("main.py", hostile.Python)]);

        // A neighbour: another sandbox of the same backend, alive during the run, whose files the program must neither see nor change.
        var neighbour = await fixture.Backend(backend).OpenSessionAsync(new SandboxSessionOptions(Limits: SandboxFixture.Limits), TestContext.Current.CancellationToken);
        Assert.True((await neighbour.PutFilesAsync([SandboxFile.Text("neighbour.txt", "secret-of-other sandbox")], default)).Ok);

        // Through warm slots: the pool at rest first, so that the run finds a ready slot.
        await fixture.Bwrap.SettleAsync();
        var (warmBefore, brokenBefore) = (fixture.Bwrap.WarmRuns, fixture.Bwrap.BrokenWarmSlots);

        var result = await fixture.Backend(backend).RunAsync(request, TestContext.Current.CancellationToken);

        var neighbourFile = await neighbour.GetFileAsync("neighbour.txt", 1 << 10, default);
        Assert.Equal("secret-of-other sandbox", Encoding.UTF8.GetString(neighbourFile.Content ?? []));
        Assert.Single(Directory.GetDirectories(fixture.ScratchFolderOf(backend)));
        await neighbour.DisposeAsync();

        Assert.True(result.Outcome == hostile.Outcome || result.Outcome == hostile.OrOutcome,
            $"{backend}/{name}: outcome {result.Outcome} (exit {result.ExitCode}, signal {result.Signal}, {result.Detail}), expected {hostile.Outcome}{(hostile.OrOutcome is { } alt ? $" or {alt}" : "")}.\n" +
            $"stdout: {SandboxText.TrimForModel(result.Stdout.Text, 2000)}\nstderr: {SandboxText.TrimForModel(result.Stderr.Text, 2000)}");
        hostile.Check(result, new Context(fixture, listener, port, backend));
        Assert.False(listener.Pending(), "the loopback server received a connection from inside the sandbox");
        await fixture.AssertHostUntouched();
        if (backend == "bwrap")
        {
            // The program ran in a warm slot, and did not break it (a broken slot is replaced, but means something of
            // the run got past the reset: the slot is checked as it is readied for its next run).
            await fixture.Bwrap.SettleAsync();
            Assert.Equal(warmBefore + 1, fixture.Bwrap.WarmRuns);
            Assert.True(fixture.Bwrap.BrokenWarmSlots == brokenBefore, $"{name} broke its warm slot: {fixture.Bwrap.LastBrokenReason}");
        }
    }

    [Fact]
    public void The_suite_has_at_least_thirty_programs() => Assert.True(Cases.Count >= 30, $"{Cases.Count} hostile programs");
}
