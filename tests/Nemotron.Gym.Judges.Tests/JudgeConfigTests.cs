using Nemotron.Gym.Runs;
using Nemotron.Gym.TestSupport;
using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Judges.Tests;

public class JudgeConfigTests
{
    [Fact]
    public void TheExampleRunOverRlhfAndMathBindsWithItsJudge()
    {
        var cfg = YamlConfig.Load<GymRunConfig>(Path.Combine(RepoPaths.Root, "gym", "Nemotron.Gym.Cli", "Configs", "rlhf-math-rl.yaml"));
        Assert.Equal(["rlhf", "math"], cfg.Environments.Select(e => e.Name));
        Assert.True(cfg.Judge.Enabled);
        Assert.Equal("http://127.0.0.1:8000/v1", cfg.Judge.BaseUrl);
        Assert.Equal(16, cfg.Judge.MaxConcurrency);
        Assert.Equal("JUDGE_API_KEY", cfg.Judge.ApiKeyEnv);
        // Without a judge section there is no judge.
        Assert.False(YamlConfig.Load<GymRunConfig>(Path.Combine(RepoPaths.Root, "gym", "Nemotron.Gym.Cli", "Configs", "rlhf-math-rl.yaml"), ["judge.base_url="]).Judge.Enabled);
    }

    [Theory]
    [InlineData("judge.base_url=ftp://x", "judge.base_url: expected an http(s) URL")]
    [InlineData("judge.max_concurrency=0", "judge.max_concurrency: must be >= 1")]
    [InlineData("judge.temperature=3", "judge.temperature: expected 0-2")]
    [InlineData("judge.timeout_seconds=0", "judge.timeout_seconds: must be > 0")]
    public void BadJudgeSettingsAreErrorsNamingTheKey(string set, string message)
    {
        var e = Assert.Throws<ConfigException>(() => YamlConfig.Load<GymRunConfig>(Path.Combine(RepoPaths.Root, "gym", "Nemotron.Gym.Cli", "Configs", "rlhf-math-rl.yaml"), [set]));
        Assert.Contains(message, e.Message);
    }
}
