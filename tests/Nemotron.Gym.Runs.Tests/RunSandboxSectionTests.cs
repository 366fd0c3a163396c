using Nemotron.Gym.Runs;
using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Runs.Tests;

/// <summary>The run config's sandbox: section: bound from YAML, checked by the sandbox's own parser, and what the silo gets.</summary>
public sealed class RunSandboxSectionTests
{
    private const string Base = "out: runs/x\ninit: sft/final\nenvironments:\n  - {name: code, settings: {difficulty: \"1\"}}\n";

    [Fact]
    public void A_sandbox_section_binds_nested_keys_and_makes_the_sandbox_required()
    {
        var cfg = YamlConfig.Parse<GymRunConfig>(Base + "sandbox:\n  backend: docker\n  docker: {endpoint: unix:///tmp/d.sock, runtime: runsc}\n  memory_mb: 512\n  concurrency: 3\n  queue_wait_s: 2.5\n", "run.yaml");
        var options = RunSandboxSection.For(cfg.Sandbox, cfg.RunId)!;
        Assert.True(options.Required);
        Assert.Equal("docker", options.Settings.Backend);
        Assert.Equal("unix:///tmp/d.sock", options.Settings.DockerEndpoint);
        Assert.Equal("runsc", options.Settings.DockerRuntime);
        Assert.Equal(512L << 20, options.Settings.Limits.MemoryBytes);
        Assert.Equal(3, options.Settings.EffectiveConcurrency);
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.Settings.QueueWait);
        Assert.Equal("x", options.Settings.SiloName); // the run id labels the run's sandboxes

        // Written back (config.yaml of the run folder) and read again, it is the same.
        var again = YamlConfig.Parse<GymRunConfig>(YamlConfig.ToYaml(cfg), "config.yaml");
        Assert.Equal(options.Settings, RunSandboxSection.For(again.Sandbox, again.RunId)!.Settings);
    }

    [Fact]
    public void No_section_tries_the_default_and_none_asks_for_none()
    {
        var cfg = YamlConfig.Parse<GymRunConfig>(Base, "run.yaml");
        var options = RunSandboxSection.For(cfg.Sandbox, cfg.RunId)!;
        Assert.False(options.Required);
        Assert.Equal("bwrap", options.Settings.Backend);
        Assert.Null(RunSandboxSection.For(YamlConfig.Parse<GymRunConfig>(Base + "sandbox: {backend: none}\n", "run.yaml").Sandbox, "x"));
    }

    [Theory]
    [InlineData("sandbox: {backend: podman}\n", "sandbox.backend = 'podman'")]
    [InlineData("sandbox: {memory_mb: 1}\n", "sandbox.memory_mb = '1'")]
    [InlineData("sandbox: {memroy_mb: 64}\n", "unknown key 'sandbox.memroy_mb'")]
    [InlineData("sandbox: {queue_capacity: -1}\n", "sandbox.queue_capacity = '-1'")]
    public void Bad_values_name_the_key(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => YamlConfig.Parse<GymRunConfig>(Base + yaml, "run.yaml"));
        Assert.Contains(expected, error.Message);
    }
}
