using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Plugins;

/// <summary>
/// What a plugin's optional plugin.json asks of its host beyond its assembly (<see cref="PluginLoader"/> reads
/// <c>assembly</c>): <c>"network": true</c> lets its worker process reach the network; without it the worker has none.
/// </summary>
/// <param name="Network">Whether the plugin's worker gets the host's network.</param>
public sealed record PluginManifest(bool Network)
{
    /// <summary>The manifest of a plugin folder (no plugin.json: nothing asked for). A malformed one is an error naming the file and field.</summary>
    public static PluginManifest Read(string folder)
    {
        var path = Path.Combine(folder, "plugin.json");
        if (!File.Exists(path)) return new PluginManifest(false);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
        return node?["network"] switch
        {
            null => new PluginManifest(false),
            JsonValue v when v.TryGetValue(out bool network) => new PluginManifest(network),
            _ => throw new InvalidDataException($"{path}: field 'network' must be true or false"),
        };
    }
}
