using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>The Docker engine dies under a run: sandbox errors (values, not exceptions), then recovery once it is back.</summary>
[Collection(SandboxCollection.Name)]
public sealed class EngineFaultTests(SandboxFixture fixture)
{
    [Fact]
    public async Task Dockerd_killed_mid_run_gives_sandbox_errors_and_the_backend_recovers_when_it_is_back()
    {
        var request = new SandboxRunRequest(new SandboxCommand(["python3", "-c", "import time; print('started', flush=True); time.sleep(3)"], Limits: SandboxFixture.Limits));
        var running = fixture.Docker.RunAsync(request, default).AsTask();
        await Task.Delay(1000);
        var pid = int.Parse(File.ReadAllText(Path.Combine(PrivateDockerDaemon.RunDirectory, "dockerd.pid")).Trim());
        using (var dockerd = System.Diagnostics.Process.GetProcessById(pid)) dockerd.Kill(); // SIGKILL: no chance to clean up
        try
        {
            var cut = await running;
            Assert.Equal(SandboxOutcome.SandboxError, cut.Outcome);
            var whileDown = await fixture.Docker.RunAsync(request, default);
            Assert.Equal(SandboxOutcome.SandboxError, whileDown.Outcome);
            Assert.Contains("docker", whileDown.Detail);
            await using var session = await fixture.Docker.OpenSessionAsync(new SandboxSessionOptions(Limits: SandboxFixture.Limits), default);
            Assert.Equal(SandboxOutcome.SandboxError, (await session.ExecAsync(new SandboxCommand(["true"]), default)).Outcome);
        }
        finally
        {
            for (var i = 0; i < 100 && Directory.Exists($"/proc/{pid}"); i++) await Task.Delay(50);
            await PrivateDockerDaemon.EnsureRunningAsync(TimeSpan.FromSeconds(60), default);
        }
        var after = await fixture.Docker.RunAsync(new SandboxRunRequest(new SandboxCommand(["python3", "-c", "print(6 * 7)"], Limits: SandboxFixture.Limits)), default);
        Assert.True(after.Succeeded, $"{after.Outcome}: {after.Detail} {after.Stderr.Text}");
        Assert.Equal("42", after.Stdout.Text.Trim());
        // The container the dead engine could not remove is the reaper's to take.
        await fixture.Docker.ReapAsync();
        for (var i = 0; i < 100 && fixture.SandboxProcesses().Any(p => p != fixture.CanaryPid); i++) await Task.Delay(50);
        await fixture.AssertHostUntouched();
    }
}
