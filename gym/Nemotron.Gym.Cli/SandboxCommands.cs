using System.CommandLine;
using Docker.DotNet;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Sandbox;
using Spectre.Console;
using YamlDotNet.RepresentationModel;

namespace Nemotron.Gym.Cli;

/// <summary>gym sandbox images build | docker start | docker stop | check: setting up and checking the code sandboxes.</summary>
internal static class SandboxCommands
{
    private static readonly Option<string?> Config = new("--config") { Description = "A run configuration whose sandbox: section to use (backend, docker.endpoint, docker.runtime, images, limits)" };
    private static readonly Option<string?> Backend = new("--backend") { Description = "bwrap or docker (overrides the configuration)" };
    private static readonly Option<string?> Endpoint = new("--docker-endpoint") { Description = "The Docker engine (overrides the configuration)" };
    private static readonly Option<string?> Runtime = new("--runtime") { Description = "docker: OCI runtime, e.g. runsc for gVisor (overrides the configuration)" };
    private static readonly Option<string?> Images = new("--images") { Description = "Folder of built images (overrides the configuration)" };

    public static void AddTo(RootCommand root)
    {
        var sandbox = new Command("sandbox", "Build sandbox images, start a private Docker engine, check a sandbox backend.");
        var images = new Command("images", "Sandbox images (recipes in sandbox-images/).");
        images.Subcommands.Add(BuildImages());
        sandbox.Subcommands.Add(images);
        var docker = new Command("docker", "A private Docker engine for machines where none runs.");
        docker.Subcommands.Add(StartDocker());
        docker.Subcommands.Add(StopDocker());
        sandbox.Subcommands.Add(docker);
        sandbox.Subcommands.Add(Check());
        root.Subcommands.Add(sandbox);
    }

    /// <summary>
    /// Host services for environments run by the tool (`gym env check`): the default sandbox backend when
    /// this machine can run it, else none (environments that need it then say so in their grades).
    /// </summary>
    public static async Task<IEnvironmentServices> EnvironmentServicesAsync(CancellationToken cancellation)
    {
        var (service, error) = await SandboxServices.CreateAsync(new SandboxSettings(), cancellation);
        if (service is null)
        {
            AnsiConsole.MarkupLineInterpolated($"[grey]no sandbox for environments: {error}[/]");
            return new Plugins.HostServices();
        }
        return new Plugins.HostServices(new Dictionary<Type, object> { [typeof(ISandboxService)] = service });
    }

    /// <summary>
    /// The sandbox pool of a silo this command starts or joins, from `--sandbox` (and `--docker-endpoint`): null for
    /// `none`; a backend named is required, the default (none named) is tried and left out if this host cannot run it,
    /// as for a run's silo.
    /// </summary>
    public static SiloSandboxOptions? SiloSandboxFromCommandLine(string? backend, string? dockerEndpoint, string siloName)
    {
        if (backend == "none") return null;
        var values = new Dictionary<string, string> { ["silo"] = siloName };
        if (backend is not null) values["backend"] = backend;
        if (dockerEndpoint is not null) values["docker.endpoint"] = dockerEndpoint;
        try { return new SiloSandboxOptions(SandboxSettings.FromValues(values, "command line"), Required: backend is not null); }
        catch (FormatException e) { throw new CliException(e.Message.Replace("command line: sandbox.backend", "--sandbox", StringComparison.Ordinal)); }
    }

    /// <summary>Settings from --config's sandbox: section, then the command-line overrides.</summary>
    private static SandboxSettings Settings(ParseResult parse)
    {
        var values = new Dictionary<string, string>();
        var source = "command line";
        if (parse.GetValue(Config) is { } path)
        {
            if (!File.Exists(path)) throw new CliException($"--config {path}: no such file");
            source = path;
            var stream = new YamlStream();
            using (var reader = new StreamReader(path)) stream.Load(reader);
            if (stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlMappingNode document
                && document.Children.TryGetValue(new YamlScalarNode("sandbox"), out var section))
            {
                if (section is not YamlMappingNode mapping) throw new CliException($"{path}:{section.Start.Line}: sandbox: expected a mapping");
                Flatten(mapping, "", values, path);
            }
        }
        void Override(Option<string?> option, string key)
        {
            if (parse.GetValue(option) is { } value) values[key] = value;
        }
        Override(Backend, "backend");
        Override(Endpoint, "docker.endpoint");
        Override(Runtime, "docker.runtime");
        Override(Images, "images");
        try { return SandboxSettings.FromValues(values, source); }
        catch (FormatException e) { throw new CliException(e.Message); }
    }

    // docker: { endpoint: ... } becomes "docker.endpoint".
    private static void Flatten(YamlMappingNode mapping, string prefix, Dictionary<string, string> values, string path)
    {
        foreach (var (key, value) in mapping.Children)
        {
            var name = prefix + ((YamlScalarNode)key).Value;
            switch (value)
            {
                case YamlScalarNode scalar: values[name] = scalar.Value ?? ""; break;
                case YamlMappingNode nested: Flatten(nested, name + ".", values, path); break;
                default: throw new CliException($"{path}:{value.Start.Line}: sandbox.{name}: expected a value or a mapping");
            }
        }
    }

    private static Command BuildImages()
    {
        var name = new Option<string[]>("--name") { Description = "Images to build (default: every recipe)" };
        var recipes = new Option<string?>("--recipes") { Description = "The recipes folder (default: sandbox-images/ above the current folder or the tool)" };
        var import = new Option<bool>("--docker-import") { Description = "Also import each image into the Docker engine (--docker-endpoint or the configured one)" };
        var cmd = new Command("build", "Build sandbox images offline from their recipes (the root filesystem bwrap binds, the tar Docker imports).") { name, recipes, import, Config, Images, Endpoint };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var settings = Settings(parse);
            var recipesFolder = parse.GetValue(recipes) ?? SandboxImage.FindRecipes()
                ?? throw new CliException("no sandbox-images/ folder above the current folder or the tool: pass --recipes");
            var names = parse.GetValue(name) is { Length: > 0 } chosen ? chosen : SandboxImage.RecipeNames(recipesFolder).ToArray();
            if (names.Length == 0) throw new CliException($"no recipes (NAME/build.sh) in {recipesFolder}");
            var table = new Table().AddColumns("image", "interpreter", "version", "size", "docker image", "imported");
            foreach (var imageName in names)
            {
                AnsiConsole.MarkupLineInterpolated($"building [bold]{imageName}[/] into {Path.Combine(settings.ImagesDirectory, imageName)} ...");
                SandboxImage image;
                try { image = await SandboxImage.BuildAsync(recipesFolder, settings.ImagesDirectory, imageName, ct); }
                catch (InvalidOperationException e) { throw new CliException(e.Message); }
                var imported = "-";
                if (parse.GetValue(import))
                {
                    using var configuration = new DockerClientConfiguration(new Uri(settings.DockerEndpoint));
                    using var client = configuration.CreateClient();
                    imported = await DockerSandboxService.EnsureImportedAsync(client, image, ct) ? "imported" : "already there";
                }
                table.AddRow(Markup.Escape(image.Name), Markup.Escape(image.Interpreter), Markup.Escape(image.Version),
                    $"{image.SizeBytes / (1024.0 * 1024):0} MiB", Markup.Escape(image.DockerImage), imported);
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return cmd;
    }

    private static Command StartDocker()
    {
        var cmd = new Command("start", $"Start a private dockerd (no bridge, no iptables) at {PrivateDockerDaemon.DefaultEndpoint}, data in {PrivateDockerDaemon.DataRoot}.");
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            try { AnsiConsole.WriteLine(await PrivateDockerDaemon.EnsureRunningAsync(TimeSpan.FromSeconds(60), ct)); }
            catch (InvalidOperationException e) { throw new CliException(e.Message); }
            return 0;
        }));
        return cmd;
    }

    private static Command StopDocker()
    {
        var cmd = new Command("stop", "Stop the private dockerd started by `gym sandbox docker start`.");
        cmd.SetAction(parse => Cli.Run(() =>
        {
            AnsiConsole.WriteLine(PrivateDockerDaemon.Stop() ? "stopped" : "no private dockerd was running");
            return 0;
        }));
        return cmd;
    }

    private static Command Check()
    {
        var probeOnly = new Option<bool>("--probe-only") { Description = "Only the health probe, not the hostile subset" };
        var cmd = new Command("check", "Run the health probe and a short hostile subset on the configured backend; print a table.") { Config, Backend, Endpoint, Runtime, Images, probeOnly };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var settings = Settings(parse);
            var (service, error) = await SandboxServices.CreateAsync(settings, ct);
            if (service is null) throw new CliException(error!);
            try
            {
                var rows = parse.GetValue(probeOnly) ? [await SandboxCheck.ProbeAsync(service, ct)] : await SandboxCheck.RunAsync(service, ct);
                var table = new Table().AddColumns("program", "must get", "got", "wall", "");
                foreach (var row in rows)
                    table.AddRow(Markup.Escape(row.Name), Markup.Escape(row.Expected), Markup.Escape(row.Got), $"{row.WallTime.TotalMilliseconds:0} ms",
                        row.Passed ? "[green]pass[/]" : "[red]FAIL[/]");
                var extra = service is BwrapSandboxService bwrap ? $", {bwrap.SlotCount} slots, {bwrap.CgroupDescription}" : "";
                AnsiConsole.MarkupLineInterpolated($"backend [bold]{service.Backend}[/]{extra}");
                AnsiConsole.Write(table);
                var failed = rows.Count(r => !r.Passed);
                AnsiConsole.MarkupLineInterpolated($"{rows.Count - failed}/{rows.Count} passed");
                return failed == 0 ? 0 : 1;
            }
            finally
            {
                await SandboxServices.DisposeAsync(service);
            }
        }));
        return cmd;
    }
}
