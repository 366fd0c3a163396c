using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>Admission control in front of the real bwrap backend: a full queue and a wait past its timeout are refused as sandbox errors.</summary>
[Collection(SandboxCollection.Name)]
public sealed class AdmissionTests(SandboxFixture fixture)
{
    private static SandboxRunRequest Sleep(double seconds) =>
        new(new SandboxCommand(["python3", "-c", $"import time; time.sleep({seconds})"], Limits: SandboxFixture.Limits));

    [Fact]
    public async Task A_full_queue_refuses_and_the_rest_run()
    {
        var admission = new SandboxAdmission(fixture.Bwrap, concurrency: 1, queueCapacity: 1, waitTimeout: TimeSpan.FromSeconds(20));
        var first = admission.RunAsync(Sleep(1.0), default).AsTask();
        await WaitUntil(() => admission.Metrics.Running == 1);
        var second = admission.RunAsync(Sleep(0.1), default).AsTask();
        await WaitUntil(() => admission.Metrics.Waiting == 1);
        var third = await admission.RunAsync(Sleep(0.1), default);

        Assert.Equal(SandboxOutcome.SandboxError, third.Outcome);
        Assert.Contains("queue full", third.Detail);
        Assert.True((await first).Succeeded);
        Assert.True((await second).Succeeded);
        var metrics = admission.Metrics;
        Assert.Equal(1, metrics.Refused);
        Assert.Equal(2, metrics.Admitted);
        Assert.Equal(2, metrics.Outcomes[SandboxOutcome.Ok]);
        Assert.True(metrics.QueueWaitMax > TimeSpan.FromMilliseconds(300), $"the second run waited only {metrics.QueueWaitMax}");
        Assert.Equal(0, metrics.Running);
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public async Task A_wait_past_the_timeout_is_refused_and_a_session_holds_its_place()
    {
        var admission = new SandboxAdmission(fixture.Bwrap, concurrency: 1, queueCapacity: 4, waitTimeout: TimeSpan.FromMilliseconds(300));
        await using (var session = await admission.OpenSessionAsync(new SandboxSessionOptions(Limits: SandboxFixture.Limits), default))
        {
            Assert.True((await session.ExecAsync(new SandboxCommand(["python3", "-c", "print(1)"]), default)).Succeeded);
            var refused = await admission.RunAsync(Sleep(0.1), default);
            Assert.Equal(SandboxOutcome.SandboxError, refused.Outcome);
            Assert.Contains("no sandbox free within", refused.Detail);
            Assert.Equal(1, admission.Metrics.Running);
        }
        Assert.True((await admission.RunAsync(Sleep(0.1), default)).Succeeded);
        Assert.Equal(0, admission.Metrics.Running);
        await fixture.AssertHostUntouched();
    }

    [Fact]
    public void Concurrency_follows_cores_and_memory()
    {
        Assert.InRange(SandboxAdmission.ConcurrencyFor(256L << 20), 1, Environment.ProcessorCount * 2);
        Assert.Equal(1, SandboxAdmission.ConcurrencyFor(long.MaxValue / 4));
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition(), "condition not reached within 5 s");
    }
}
