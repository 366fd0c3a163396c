using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>Sessions, the files API and its refusals, cancellation and concurrency, on each backend.</summary>
[Collection(SandboxCollection.Name)]
public sealed class SessionTests(SandboxFixture fixture)
{
    public static TheoryData<string> Backends => new("bwrap", "docker");

    private static SandboxCommand Python(string code, SandboxLimits? limits = null) => new(["python3", "-c", code], Limits: limits ?? SandboxFixture.Limits);

    private static string Text(SandboxFileRead read) => Encoding.UTF8.GetString(read.Content ?? throw new Xunit.Sdk.XunitException($"read failed: {read.Error}"));

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task Session_keeps_files_between_commands_until_reset(string backend)
    {
        await using (var session = await fixture.Backend(backend).OpenSessionAsync(new SandboxSessionOptions(Limits: SandboxFixture.Limits), default))
        {
            Assert.True((await session.PutFilesAsync([SandboxFile.Text("lib/util.py", "def double(x):\n    return 2 * x\n")], default)).Ok);
            var first = await session.ExecAsync(Python("import sys; sys.path.insert(0, 'lib'); import util; open('out.txt', 'w').write(str(util.double(21)))"), default);
            Assert.True(first.Succeeded, first.Stderr.Text + first.Detail);
            Assert.Equal("42", Text(await session.GetFileAsync("out.txt", 100, default)));

            var second = await session.ExecAsync(Python("print(open('out.txt').read())"), default);
            Assert.Equal("42", second.Stdout.Text.Trim());

            var partial = await session.GetFileAsync("out.txt", 1, default);
            Assert.True(partial.Truncated);
            Assert.Equal("4", Encoding.UTF8.GetString(partial.Content!));

            Assert.True((await session.ResetAsync(default)).Ok);
            Assert.NotNull((await session.GetFileAsync("out.txt", 100, default)).Error);
            var after = await session.ExecAsync(new SandboxCommand(["ls", "-A", "/work"], Limits: SandboxFixture.Limits), default);
            Assert.True(after.Succeeded, after.Stderr.Text);
            Assert.Equal("", after.Stdout.Text.Trim());
        }
        await fixture.AssertHostUntouched();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task Files_api_refuses_absolute_dotdot_and_symlink_paths(string backend)
    {
        var passwdBefore = SHA256.HashData(File.ReadAllBytes("/etc/passwd"));
        await using (var session = await fixture.Backend(backend).OpenSessionAsync(new SandboxSessionOptions(Limits: SandboxFixture.Limits), default))
        {
            foreach (var bad in new[] { "../escape.txt", "/etc/escape.txt", "a/../../escape.txt", "", "./x", "a//b" })
            {
                var put = await session.PutFilesAsync([SandboxFile.Text(bad, "x")], default);
                Assert.False(put.Ok, $"'{bad}' was accepted");
                Assert.NotNull(put.Error);
            }
            // The program plants links to host paths in its scratch folder.
            var plant = await session.ExecAsync(Python("import os; os.symlink('/etc', 'etc_link'); os.symlink('/etc/passwd', 'passwd_link'); os.mkdir('d'); os.symlink('/', 'd/root')"), default);
            Assert.True(plant.Succeeded, plant.Stderr.Text);
            foreach (var link in new[] { "etc_link/passwd", "passwd_link", "d/root/etc/passwd" })
            {
                var read = await session.GetFileAsync(link, 1 << 20, default);
                Assert.Null(read.Content);
                Assert.Contains("symbolic link", read.Error);
            }
            foreach (var link in new[] { "etc_link/escape.txt", "passwd_link", "d/root/escape.txt" })
                Assert.False((await session.PutFilesAsync([SandboxFile.Text(link, "owned")], default)).Ok, $"'{link}' was written through");
        }
        Assert.False(File.Exists("/etc/escape.txt"));
        Assert.False(File.Exists("/escape.txt"));
        Assert.False(File.Exists(Path.Combine(fixture.Settings.ScratchDirectory, backend, "escape.txt")));
        Assert.Equal(passwdBefore, SHA256.HashData(File.ReadAllBytes("/etc/passwd")));

        var run = await fixture.Backend(backend).RunAsync(new SandboxRunRequest(Python("print(1)"), [SandboxFile.Text("../escape.txt", "x")]), default);
        Assert.Equal(SandboxOutcome.SandboxError, run.Outcome);
        Assert.Contains("..", run.Detail);
        await fixture.AssertHostUntouched();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task A_daemon_started_by_one_command_is_gone_before_the_next(string backend)
    {
        await using (var session = await fixture.Backend(backend).OpenSessionAsync(new SandboxSessionOptions(Limits: SandboxFixture.Limits), default))
        {
            var daemon = await session.ExecAsync(Python("""
                import os, time
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        while True:
                            open('/work/alive', 'a').write('.')
                            time.sleep(0.02)
                    os._exit(0)
                os.wait()
                time.sleep(0.2)
                """), default);
            Assert.True(daemon.Succeeded, daemon.Stderr.Text + daemon.Detail);
            Assert.NotNull((await session.GetFileAsync("alive", 1 << 20, default)).Content);
            var check = await session.ExecAsync(Python("""
                import os, time
                os.remove('/work/alive')
                time.sleep(0.3)
                print('recreated' if os.path.exists('/work/alive') else 'gone')
                """), default);
            Assert.Equal("gone", check.Stdout.Text.Trim());
        }
        await fixture.AssertHostUntouched();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task A_command_past_its_time_is_killed_and_the_session_goes_on(string backend)
    {
        await using (var session = await fixture.Backend(backend).OpenSessionAsync(new SandboxSessionOptions(Limits: SandboxFixture.Limits), default))
        {
            Assert.True((await session.PutFilesAsync([SandboxFile.Text("keep.txt", "kept")], default)).Ok);
            var clock = Stopwatch.StartNew();
            var slow = await session.ExecAsync(Python("import time; time.sleep(100)", SandboxFixture.Limits with { WallTime = TimeSpan.FromSeconds(1) }), default);
            Assert.Equal(SandboxOutcome.Timeout, slow.Outcome);
            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(6));
            var next = await session.ExecAsync(Python("print(open('keep.txt').read())"), default);
            Assert.True(next.Succeeded, next.Stderr.Text + next.Detail);
            Assert.Equal("kept", next.Stdout.Text.Trim());
        }
        await fixture.AssertHostUntouched();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task Cancelling_a_run_kills_it_from_outside(string backend)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
        var clock = Stopwatch.StartNew();
        var result = await fixture.Backend(backend).RunAsync(new SandboxRunRequest(Python("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(100)")), cancel.Token);
        Assert.Equal(SandboxOutcome.Killed, result.Outcome);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.6), TimeSpan.FromSeconds(5));
        await fixture.AssertHostUntouched();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task Concurrent_runs_each_get_their_own_sandbox(string backend)
    {
        // More runs than slots: the rest wait their turn. Each writes its own file and must see only it.
        var runs = Enumerable.Range(0, 12).Select(i => fixture.Backend(backend).RunAsync(new SandboxRunRequest(
            Python("import os, sys; print(sys.argv[1], sorted(os.listdir('/work')))".Replace("sys.argv[1]", $"'{i}'")),
            [SandboxFile.Text($"mine-{i}.txt", "x")]), default).AsTask()).ToList();
        var results = await Task.WhenAll(runs);
        for (var i = 0; i < results.Length; i++)
        {
            Assert.True(results[i].Succeeded, results[i].Stderr.Text + results[i].Detail);
            Assert.Equal($"{i} ['mine-{i}.txt']", results[i].Stdout.Text.Trim());
        }
        await fixture.AssertHostUntouched();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task A_missing_image_or_bad_limits_are_sandbox_errors_not_exceptions(string backend)
    {
        var missing = await fixture.Backend(backend).RunAsync(new SandboxRunRequest(Python("print(1)"), Image: "no-such-image"), default);
        Assert.Equal(SandboxOutcome.SandboxError, missing.Outcome);
        Assert.Contains("no-such-image", missing.Detail);
        var bad = await fixture.Backend(backend).RunAsync(new SandboxRunRequest(Python("print(1)", SandboxFixture.Limits with { MemoryBytes = 1 })), default);
        Assert.Equal(SandboxOutcome.SandboxError, bad.Outcome);
        Assert.Contains("memory", bad.Detail);
        var empty = await fixture.Backend(backend).RunAsync(new SandboxRunRequest(new SandboxCommand([])), default);
        Assert.Equal(SandboxOutcome.SandboxError, empty.Outcome);
        await using var session = await fixture.Backend(backend).OpenSessionAsync(new SandboxSessionOptions("no-such-image"), default);
        Assert.Equal(SandboxOutcome.SandboxError, (await session.ExecAsync(Python("print(1)"), default)).Outcome);
        Assert.False((await session.PutFilesAsync([SandboxFile.Text("a", "b")], default)).Ok);
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public async Task A_program_that_prints_like_bwrap_is_still_the_programs_failure()
    {
        // bwrap's own errors are told apart by its status report, not by text a program could print.
        var result = await fixture.Bwrap.RunAsync(new SandboxRunRequest(Python("import sys; sys.stderr.write('bwrap: Can\\'t find source path /x\\n'); sys.exit(1)")), default);
        Assert.Equal(SandboxOutcome.Ok, result.Outcome);
        Assert.Equal(1, result.ExitCode);
    }

    [Fact]
    public async Task Bwrap_reports_cpu_time_and_peak_memory_where_cgroups_exist()
    {
        var result = await fixture.Bwrap.RunAsync(new SandboxRunRequest(Python("x = b'a' * (40 << 20)\ni = 0\nwhile i < 3_000_000: i += 1")), default);
        Assert.True(result.Succeeded, result.Stderr.Text);
        if (fixture.Bwrap.CgroupDescription.StartsWith("cgroup", StringComparison.Ordinal))
        {
            Assert.InRange(result.CpuTime!.Value, TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(3));
            Assert.InRange(result.PeakMemoryBytes!.Value, 40L << 20, 128L << 20);
        }
        else
        {
            Assert.Null(result.CpuTime);
        }
    }
}
