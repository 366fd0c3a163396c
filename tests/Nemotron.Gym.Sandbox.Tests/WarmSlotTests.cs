using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>
/// The warm slots of the bwrap backend: a sandbox kept between one-shot runs must hand each run a sandbox that
/// nothing of an earlier run can reach (files, processes, namespace state), must survive what a run does to it, and
/// when it breaks must be replaced, with the run going cold meanwhile. One slot per service, so every run of a test
/// lands in the same sandbox.
/// </summary>
[Collection(SandboxCollection.Name)]
public sealed class WarmSlotTests(SandboxFixture fixture)
{
    private static SandboxCommand Python(string source, SandboxLimits? limits = null) =>
        new(["python3", "-c", source], Limits: limits ?? SandboxFixture.Limits);

    private async Task<BwrapSandboxService> OneWarmSlotAsync()
    {
        var (service, error) = BwrapSandboxService.Create(fixture.Settings with { Slots = 1, WarmSlots = 1 });
        Assert.True(service is not null, error);
        await WaitWarmAsync(service);
        return service;
    }

    private static async Task WaitWarmAsync(BwrapSandboxService service)
    {
        for (var i = 0; i < 400 && service.WarmSlotsReady == 0; i++) await Task.Delay(25);
        Assert.True(service.WarmSlotsReady == 1, $"no warm slot came up: {service.WarmSlotProblem}");
    }

    private static void Ok(SandboxResult result) =>
        Assert.True(result.Outcome == SandboxOutcome.Ok && result.ExitCode == 0,
            $"{result.Outcome} exit {result.ExitCode} signal {result.Signal} {result.Detail}\nstdout: {result.Stdout.Text}\nstderr: {result.Stderr.Text}");

    [Fact]
    public void Warm_slots_are_set_in_the_sandbox_section_and_a_bad_value_is_named()
    {
        Assert.Equal(0, SandboxSettings.FromValues(new Dictionary<string, string> { ["warm_slots"] = "0" }, "run.yaml").EffectiveWarmSlots);
        Assert.Equal(3, SandboxSettings.FromValues(new Dictionary<string, string> { ["warm_slots"] = "5", ["slots"] = "3" }, "run.yaml").EffectiveWarmSlots);
        Assert.Equal(Math.Min(8, 2 * Environment.ProcessorCount), new SandboxSettings { Slots = 8 }.EffectiveWarmSlots);
        var bad = Assert.Throws<FormatException>(() => SandboxSettings.FromValues(new Dictionary<string, string> { ["warm_slots"] = "-2" }, "run.yaml"));
        Assert.Contains("run.yaml: sandbox.warm_slots", bad.Message);
    }

    [Fact]
    public async Task The_hosts_bwrap_backend_serves_one_shot_runs_warm_and_no_program_broke_a_slot()
    {
        // The fixture's bwrap backend also ran the hostile suite (in whatever order): none of its programs may have
        // broken a warm slot (a broken slot is replaced, but means something got past the reset).
        // Sessions take warm slots' uids when no other is free (a burst of them may take all); slots start again as they end.
        await fixture.Bwrap.SettleAsync();
        for (var i = 0; i < 400 && fixture.Bwrap.WarmSlotsReady == 0; i++) await Task.Delay(25);
        var before = fixture.Bwrap.WarmRuns;
        var result = await fixture.Bwrap.RunAsync(new SandboxRunRequest(Python("print(6 * 7)")), default);
        Ok(result);
        Assert.Equal("42", result.Stdout.Text.Trim());
        Assert.Equal(before + 1, fixture.Bwrap.WarmRuns);
        Assert.True(fixture.Bwrap.BrokenWarmSlots == 0, $"{fixture.Bwrap.BrokenWarmSlots} warm slots broke; the last: {fixture.Bwrap.LastBrokenReason}");
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public async Task Nothing_of_one_run_is_seen_by_the_next_in_the_same_slot()
    {
        using (var service = await OneWarmSlotAsync())
        {
            var first = await service.RunAsync(new SandboxRunRequest(Python("""
                import os, time
                for path in ('/work/left', '/tmp/left', '/dev/shm/left'):
                    open(path, 'w').write('from run one')
                os.chmod('/work', 0o777)
                os.utime('/work', (123456789, 123456789))
                r, w = os.pipe()
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.write(w, b'%d\n' % os.getpid())
                        while True:
                            open('/tmp/daemon-alive', 'a').close()
                            time.sleep(0.02)
                    os._exit(0)
                print(os.read(r, 64).decode().strip(), flush=True)
                """), [SandboxFile.Text("input.txt", "one")]), default);
            Ok(first);
            var daemonPid = int.Parse(first.Stdout.Text.Trim());

            var second = await service.RunAsync(new SandboxRunRequest(Python($$"""
                import os, stat
                print(sorted(os.listdir('/work')), sorted(os.listdir('/tmp')), sorted(os.listdir('/dev/shm')))
                st = os.stat('/work')
                print(oct(stat.S_IMODE(st.st_mode)), int(st.st_mtime) == 123456789)
                try:
                    os.kill({{daemonPid}}, 0); print('daemon alive')
                except ProcessLookupError:
                    print('daemon gone')
                print(sorted(p for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())))
                """), [SandboxFile.Text("input2.txt", "two")]), default);
            Ok(second);
            var lines = second.Stdout.Text.Split('\n');
            Assert.Equal("['input2.txt'] [] []", lines[0]);
            Assert.Equal("0o700 False", lines[1]);
            Assert.Equal("daemon gone", lines[2]);
            Assert.Equal("[]", lines[3]);
            Assert.Equal(2, service.WarmRuns);
            Assert.Equal(0, service.ColdRuns);
        }
        await fixture.AssertHostUntouched();
    }

    [Theory]
    [InlineData("bwrap")]
    [InlineData("bwrap-cold")]
    public async Task State_that_namespaces_keep_between_runs_is_refused(string backend)
    {
        // SysV IPC and POSIX message queues live as long as the IPC namespace, keyrings as long as the user namespace:
        // a warm slot's outlive the run, so both paths refuse them alike.
        var result = await fixture.Backend(backend).RunAsync(new SandboxRunRequest(Python("""
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            calls = {
                'shmget': lambda: libc.shmget(0, 4096, 0o1600),
                'semget': lambda: libc.semget(0, 1, 0o1600),
                'msgget': lambda: libc.msgget(0, 0o1600),
                'mq_open': lambda: libc.syscall(240, b'/q', os.O_CREAT | os.O_RDWR, 0o600, None),
                'add_key': lambda: libc.syscall(248, b'user', b'k', b'secret', 6, -4),
                'keyctl': lambda: libc.syscall(250, 0, -4, 0),
            }
            results = []
            for name, call in calls.items():
                rc = call()
                results.append(f'{name}:{"refused" if rc == -1 and ctypes.get_errno() == 1 else "allowed"}')
            print(' '.join(results))
            """)), default);
        Ok(result);
        Assert.Equal("shmget:refused semget:refused msgget:refused mq_open:refused add_key:refused keyctl:refused", result.Stdout.Text.Trim());
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public async Task A_run_can_neither_kill_nor_trace_nor_read_the_slots_agent()
    {
        using (var service = await OneWarmSlotAsync())
        {
            var attack = await service.RunAsync(new SandboxRunRequest(Python("""
                import ctypes, os, signal
                libc = ctypes.CDLL(None, use_errno=True)
                out = []
                for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1):
                    try: os.kill(1, sig); out.append('signal sent')
                    except OSError: out.append('signal refused')
                out.append('ptrace ' + ('attached' if libc.ptrace(16, 1, None, None) == 0 else 'denied'))
                for path in ('/proc/1/mem', '/proc/1/fd/0', '/proc/1/fd/1', '/proc/1/environ', '/proc/1/root/work'):
                    try:
                        fd = os.open(path, os.O_RDWR if 'fd' in path else os.O_RDONLY)
                        out.append(path + ' opened'); os.close(fd)
                    except OSError:
                        out.append(path + ' refused')
                print(out)
                """)), default);
            Ok(attack);
            Assert.DoesNotContain("opened", attack.Stdout.Text);
            Assert.Contains("ptrace denied", attack.Stdout.Text);
            // Whatever the signals did, the slot still serves, warm, and its program starts with the signal dispositions
            // and mask a cold run's program starts with (the agent's own, python's, must not leak into it).
            static string Signals(SandboxResult r) => string.Join(" ", r.Stdout.Text.Split('\n').Where(l => l.StartsWith("Sig", StringComparison.Ordinal)));
            var status = new SandboxRunRequest(new SandboxCommand(["cat", "/proc/self/status"], Limits: SandboxFixture.Limits));
            var next = await service.RunAsync(status, default);
            Ok(next);
            var cold = await fixture.BwrapCold.RunAsync(status, default);
            Ok(cold);
            Assert.Contains("SigIgn", Signals(next));
            Assert.Equal(Signals(cold), Signals(next));
            Assert.Equal(0, service.BrokenWarmSlots);
            Assert.Equal(2, service.WarmRuns);
            Assert.Equal(0, service.ColdRuns);
        }
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public async Task A_broken_slot_is_replaced_and_the_run_meanwhile_goes_cold()
    {
        using (var service = await OneWarmSlotAsync())
        {
            Ok(await service.RunAsync(new SandboxRunRequest(Python("print(1)")), default));
            // The slot breaks under it: its keepers die (as if the kernel's OOM killer took them).
            var keepers = service.WarmKeeperProcessIds;
            Assert.NotEmpty(keepers);
            foreach (var pid in keepers) { try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } }
            for (var i = 0; i < 100 && keepers.Any(pid => Directory.Exists($"/proc/{pid}")); i++) await Task.Delay(20);

            var fallback = await service.RunAsync(new SandboxRunRequest(Python("print('cold')")), default);
            Ok(fallback);
            Assert.Equal("cold", fallback.Stdout.Text.Trim());
            Assert.Equal(1, service.ColdRuns);
            Assert.Equal(1, service.BrokenWarmSlots);

            // A new slot replaces it, and the next run is warm again.
            await WaitWarmAsync(service);
            Assert.DoesNotContain(service.WarmKeeperProcessIds, keepers.Contains);
            var warmAgain = await service.RunAsync(new SandboxRunRequest(Python("print('warm')")), default);
            Ok(warmAgain);
            Assert.Equal(2, service.WarmRuns);
        }
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public async Task A_slot_whose_agent_stops_answering_is_given_up_and_the_run_goes_cold()
    {
        using (var service = await OneWarmSlotAsync())
        {
            // The agent hangs (stopped from the host, as a wedged process would be): the run waits for it a bounded
            // time, then runs cold; the slot is replaced.
            foreach (var pid in service.WarmKeeperProcessIds) Assert.True(Signal(pid, 19), $"SIGSTOP {pid}");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = await service.RunAsync(new SandboxRunRequest(Python("print('answered')")), default);
            Ok(result);
            Assert.Equal("answered", result.Stdout.Text.Trim());
            Assert.Equal(1, service.ColdRuns);
            Assert.Equal(1, service.BrokenWarmSlots);
            Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(30));
            await WaitWarmAsync(service);
            Ok(await service.RunAsync(new SandboxRunRequest(Python("print(3)")), default));
            Assert.Equal(1, service.WarmRuns);
        }
        await fixture.AssertHostUntouched();
    }

    private static bool Signal(int pid, int signal) => kill(pid, signal) == 0;

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int kill(int pid, int signal);

    [Fact]
    public async Task Limits_hold_in_a_warm_slot_and_leave_it_serving()
    {
        using (var service = await OneWarmSlotAsync())
        {
            var timeout = await service.RunAsync(new SandboxRunRequest(Python("import time\nprint('sleeping', flush=True)\ntime.sleep(60)",
                SandboxFixture.Limits with { WallTime = TimeSpan.FromSeconds(1) })), default);
            Assert.Equal(SandboxOutcome.Timeout, timeout.Outcome);
            Assert.InRange(timeout.WallTime, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(5));

            var memory = await service.RunAsync(new SandboxRunRequest(Python("chunks = []\nwhile True: chunks.append(b'x' * (8 << 20))")), default);
            Assert.Equal(SandboxOutcome.MemoryLimit, memory.Outcome);

            var processes = await service.RunAsync(new SandboxRunRequest(Python("""
                import os, time
                n = 0
                try:
                    while True:
                        if os.fork() == 0:
                            time.sleep(5); os._exit(0)
                        n += 1
                except OSError:
                    print('stopped at', n)
                """)), default);
            Ok(processes);
            Assert.InRange(int.Parse(processes.Stdout.Text.Split(' ')[2]), 1, SandboxFixture.Limits.Processes);

            var output = await service.RunAsync(new SandboxRunRequest(Python("while True: print('y' * 1000)")), default);
            Assert.Equal(SandboxOutcome.OutputLimit, output.Outcome);

            var after = await service.RunAsync(new SandboxRunRequest(new SandboxCommand(["python3", "-c", "import sys; print(sys.stdin.read()[::-1])"], "olleh"u8.ToArray(), SandboxFixture.Limits)), default);
            Ok(after);
            Assert.Equal("hello", after.Stdout.Text.Trim());
            Assert.Equal(5, service.WarmRuns);
            Assert.Equal(0, service.ColdRuns);
        }
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public async Task A_missing_program_is_the_programs_failure_not_the_slots()
    {
        using (var service = await OneWarmSlotAsync())
        {
            var missing = await service.RunAsync(new SandboxRunRequest(new SandboxCommand(["no-such-program"], Limits: SandboxFixture.Limits)), default);
            Assert.Equal(SandboxOutcome.Ok, missing.Outcome);
            Assert.NotEqual(0, missing.ExitCode);
            Ok(await service.RunAsync(new SandboxRunRequest(Python("print(2)")), default));
            Assert.Equal(2, service.WarmRuns);
        }
        await fixture.AssertHostUntouched();
    }
}
