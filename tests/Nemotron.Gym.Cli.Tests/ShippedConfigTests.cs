using Nemotron.Gym.Runs;
using Nemotron.Gym.TestSupport;
using Nemotron.Gym.Training;
using Nemotron.Gym.Training.Config;

namespace Nemotron.Gym.Cli.Tests;

/// <summary>The configs the CLI ships (and the README tells users to run) load and chain into each other.</summary>
public sealed class ShippedConfigTests
{
    private static string Config(string name) => Path.Combine(RepoPaths.Root, "gym", "Nemotron.Gym.Cli", "Configs", name);

    [Fact]
    public void Every_run_config_loads()
    {
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(Config("x"))!, "*.yaml"))
        {
            string name = Path.GetFileNameWithoutExtension(file);
            if (name.EndsWith("-pretrain", StringComparison.Ordinal)) YamlConfig.Load<PretrainConfig>(file);
            else if (name.EndsWith("-sft", StringComparison.Ordinal)) YamlConfig.Load<SftConfig>(file);
            else if (name.EndsWith("-rl", StringComparison.Ordinal)) YamlConfig.Load<GymRunConfig>(file);
        }
    }

    [Fact]
    public void The_code_recipe_chains_pretrain_to_sft_to_rl_and_fits_a_code_answer()
    {
        var pretrain = YamlConfig.Load<PretrainConfig>(Config("code-pretrain.yaml"));
        var sft = YamlConfig.Load<SftConfig>(Config("code-sft.yaml"));
        var rl = YamlConfig.Load<GymRunConfig>(Config("math-code-rl.yaml"));
        Assert.Equal(pretrain.Out + "/final", sft.Init);
        Assert.Equal(sft.Out + "/final", rl.Init);
        Assert.Equal(pretrain.Data.Train, sft.Data.Train);
        // A code prompt is up to about 460 bytes (byte tokens) plus the chat template's markers; its answer must fit behind it.
        Assert.True(pretrain.Model.Context >= 460 + 24 + rl.Rollout.MaxNewTokens,
            $"context {pretrain.Model.Context} cannot hold a code prompt and {rl.Rollout.MaxNewTokens} new tokens");
        Assert.Contains(rl.Environments, e => e.Name == "code");
    }
}
