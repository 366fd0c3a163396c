using System.CommandLine;
using System.Text.RegularExpressions;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// gym env new NAME: writes a plugin project that builds on its own (outside this repository) against the
/// Nemotron.Gym.Abstractions that ships with this tool, with a data file, a README and a test project, and
/// that passes `gym env check` as generated.
/// </summary>
internal static partial class Scaffold
{
    [GeneratedRegex("^[A-Z][A-Za-z0-9]{0,40}$")]
    private static partial Regex ValidName();

    /// <summary>
    /// Names the project cannot take: the scaffold's namespace is the name, so a type the generated code uses unqualified
    /// (every public type of the plugin and conversation contracts) or a root namespace it imports would be shadowed.
    /// </summary>
    private static readonly HashSet<string> ReservedNames =
    [
        .. typeof(Nemotron.Gym.Abstractions.EnvironmentBase).Assembly.GetExportedTypes().Select(t => t.Name.Split('`')[0]),
        .. typeof(Nemotron.Gym.Conversation.Grade).Assembly.GetExportedTypes().Select(t => t.Name.Split('`')[0]),
        "System", "Microsoft", "Nemotron", "Xunit", "Assert", "Fact", "Theory", "Task", "Tests", "Enumerable",
    ];

    public static Command Command()
    {
        var name = new Argument<string>("name") { Description = "PascalCase name, e.g. WordCount" };
        var outDir = new Option<string>("--out") { Description = "Parent folder", DefaultValueFactory = _ => "." };
        var cmd = new Command("new", "Scaffold an environment plugin project (class, data, README, test).") { name, outDir };
        cmd.SetAction(parse => Cli.Run(() =>
        {
            var folder = Write(parse.GetValue(name)!, parse.GetValue(outDir)!);
            AnsiConsole.MarkupLineInterpolated($"created {folder}\nnext: gym env check {folder}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Writes the project; returns its folder.</summary>
    public static string Write(string name, string parent)
    {
        if (!ValidName().IsMatch(name)) throw new CliException($"'{name}' is not a valid environment name: use PascalCase letters and digits, e.g. WordCount");
        if (ReservedNames.Contains(name))
            throw new CliException($"'{name}' is not a valid environment name: the generated code uses '{name}' as a type or namespace already (it would not compile); pick another, e.g. {name}Task");
        var folder = Path.GetFullPath(Path.Combine(parent, name));
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
            throw new CliException($"{folder} already exists and is not empty");
        // The plugin contract and the conversation contract it builds on: both come from the host at run time.
        var contract = Path.Combine(AppContext.BaseDirectory, "Nemotron.Gym.Abstractions.dll");
        var conversation = Path.Combine(AppContext.BaseDirectory, "Nemotron.Gym.Conversation.dll");
        foreach (var c in new[] { contract, conversation })
            if (!File.Exists(c)) throw new CliException($"{c} is missing from this installation");
        string env = name.ToLowerInvariant();
        Directory.CreateDirectory(Path.Combine(folder, "data"));
        Directory.CreateDirectory(Path.Combine(folder, "tests"));
        File.WriteAllText(Path.Combine(folder, $"{name}.csproj"), $$"""
            <Project Sdk="Microsoft.NET.Sdk">
              <!-- A Nemotron.Gym environment plugin. Build it, then: gym env check . -->
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <EnableDynamicLoading>true</EnableDynamicLoading>
              </PropertyGroup>
              <ItemGroup>
                <!-- The contracts come from the host at run time: do not copy them (Private=false). -->
                <Reference Include="Nemotron.Gym.Abstractions">
                  <HintPath>{{contract}}</HintPath>
                  <Private>false</Private>
                </Reference>
                <Reference Include="Nemotron.Gym.Conversation">
                  <HintPath>{{conversation}}</HintPath>
                  <Private>false</Private>
                </Reference>
              </ItemGroup>
              <ItemGroup>
                <Content Include="data/**/*" CopyToOutputDirectory="PreserveNewest" />
                <!-- Names the plugin's assembly, so the built folder (whatever its name) is a plugin folder. -->
                <Content Include="plugin.json" CopyToOutputDirectory="PreserveNewest" />
                <Compile Remove="tests/**" />
                <None Remove="tests/**" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(folder, $"{name}Environment.cs"), $$"""
            using System.Text.Json.Nodes;
            using Nemotron.Gym.Abstractions;
            using Nemotron.Gym.Conversation;

            namespace {{name}};

            /// <summary>
            /// {{name}}: the model must answer with the word the task names. Replace the verifier with your own:
            /// the grade's reason and evidence are what people read when they audit a run.
            /// </summary>
            public sealed class {{name}}Environment : EnvironmentBase
            {
                /// <inheritdoc />
                public override EnvironmentDescriptor Descriptor { get; } = new(
                    "{{env}}", "0.1.0", "Answer with the requested word (a template: replace with your task).",
                    [new ConfigOption("case_sensitive", ConfigType.Boolean, "false", "Compare the word case-sensitively.")],
                    ["train"]);

                /// <inheritdoc />
                public override IReadOnlyList<string> ValidateTask(TaskRecord task) =>
                    task.VerifierMetadata["word"] is JsonValue v && v.TryGetValue(out string? w) && w.Length > 0 ? [] : ["verifier_metadata.word must be a non-empty string"];

                /// <inheritdoc />
                public override ValueTask<IEpisode> OpenEpisodeAsync(TaskRecord task, EpisodeContext context, CancellationToken cancellation) =>
                    ValueTask.FromResult<IEpisode>(new Episode(task, Context.GetBool("case_sensitive")));

                private sealed class Episode(TaskRecord task, bool caseSensitive) : SingleTurnEpisode(task)
                {
                    protected override Grade Grade(AssistantTurn answer)
                    {
                        string expected = Task.VerifierMetadata["word"]!.GetValue<string>();
                        string given = answer.Content.Trim().TrimEnd('.', '!');
                        bool ok = string.Equals(given, expected, caseSensitive ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase);
                        return new Grade(ok ? 1 : 0, new Dictionary<string, double> { ["correct"] = ok ? 1 : 0 },
                            ok ? $"answered '{expected}'" : $"expected '{expected}', got '{given}'",
                            new Dictionary<string, string> { ["answer"] = given, ["expected"] = expected });
                    }
                }
            }
            """);
        File.WriteAllText(Path.Combine(folder, "plugin.json"), $$"""{ "assembly": "{{name}}.dll" }""" + "\n");
        var words = new[] { "apple", "river", "cloud" };
        File.WriteAllLines(Path.Combine(folder, "data", "train.jsonl"), words.Select((w, i) =>
            $$"""{"id": "{{env}}-{{i + 1}}", "responses_create_params": {"input": [{"role": "user", "content": "Answer with the single word: {{w}}"}]}, "verifier_metadata": {"word": "{{w}}"}, "reference": [{"content": "{{w}}"}]}"""));
        File.WriteAllText(Path.Combine(folder, "README.md"), $$"""
            # {{env}}

            A Nemotron.Gym environment plugin.

            - `{{name}}Environment.cs`: the environment (describes itself, opens episodes, grades them).
            - `data/train.jsonl`: tasks in NeMo-Gym's shape, each with a `reference` answer.
            - `tests/`: unit tests of the verifier (`dotnet test tests`).

            Check it (builds it, validates every task, replays references, tries wrong answers):

                gym env check .

            Grade one response, or play an episode yourself:

                gym env grade . --task {{env}}-1 --response "apple"
                gym env play .

            Use it in a run by putting the built folder (bin/plugin) on the plugin path (`--plugins` or
            NEMOTRON_GYM_PLUGINS).
            """);
        File.WriteAllText(Path.Combine(folder, "global.json"), """{ "test": { "runner": "Microsoft.Testing.Platform" } }""" + "\n");
        File.WriteAllText(Path.Combine(folder, "tests", $"{name}.Tests.csproj"), $$"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <OutputType>Exe</OutputType>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="xunit.v3" Version="4.0.2" />
                <Using Include="Xunit" />
                <ProjectReference Include="../{{name}}.csproj" />
                <Reference Include="Nemotron.Gym.Abstractions"><HintPath>{{contract}}</HintPath></Reference>
                <Reference Include="Nemotron.Gym.Conversation"><HintPath>{{conversation}}</HintPath></Reference>
                <Content Include="../data/**/*" LinkBase="data" CopyToOutputDirectory="PreserveNewest" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(folder, "tests", $"{name}Tests.cs"), $$"""
            using Nemotron.Gym.Abstractions;
            using Nemotron.Gym.Conversation;

            namespace {{name}}.Tests;

            public class {{name}}Tests
            {
                private sealed class NoServices : IEnvironmentServices { public T? Get<T>() where T : class => null; }
                private sealed class NoLog : IEnvironmentLog { public void Write(string message) { } }

                private static async Task<Grade> GradeAsync(string response)
                {
                    var env = new {{name}}Environment();
                    var settings = env.Descriptor.Options.ToDictionary(o => o.Name, o => o.Default);
                    await env.InitializeAsync(new EnvironmentContext(settings, Path.Combine(AppContext.BaseDirectory, "data"), new NoServices(), new NoLog()), default);
                    var task = (await env.LoadTasksAsync(new TaskQuery("train", 0, 1), default))[0];
                    await using var episode = await env.OpenEpisodeAsync(task, new EpisodeContext(1, 0), default);
                    await episode.StepAsync(AssistantTurn.FromContent(response), default);
                    return await episode.GradeAsync(default);
                }

                [Fact]
                public async Task TheRightWordGetsFullReward() => Assert.Equal(1.0, (await GradeAsync("Apple.")).Reward);

                [Fact]
                public async Task AnyOtherWordGetsNothing() => Assert.Equal(0.0, (await GradeAsync("banana")).Reward);
            }
            """);
        return folder;
    }
}
