using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using MessagePack;
using Nemotron.Gym.Abstractions;

namespace Nemotron.Gym.PluginWorker;

/// <summary>
/// Host services (<see cref="IEnvironmentServices"/>) for plugins in workers. The service runs in the host, where it was
/// configured (a sandbox needs root and its own namespaces, which a worker inside bubblewrap does not have); the
/// plugin gets a proxy of the same interface whose calls travel over the worker's channel. Arguments and results
/// travel as JSON by their declared types; a result whose declared type is an interface (a sandbox session) stays in
/// the host and the plugin gets a proxy of it too. Adding a service is one line in <see cref="Proxied"/>.
/// </summary>
public static class WorkerServices
{
    /// <summary>The service interfaces a plugin in a worker can use.</summary>
    public static IReadOnlyList<Type> Proxied { get; } = [typeof(ISandboxService), typeof(IJudgeService)];

    internal static readonly JsonSerializerOptions Json = new() { IncludeFields = false };

    /// <summary>The method of <paramref name="type"/> (or an interface it extends) a call names: by name and number of arguments.</summary>
    internal static MethodInfo? FindMethod(Type type, string name, int arguments) =>
        new[] { type }.Concat(type.GetInterfaces())
            .SelectMany(t => t.GetMethods())
            .FirstOrDefault(m => m.Name == name && m.GetParameters().Length == arguments);

    /// <summary>The value a task-like return type carries (void for Task and ValueTask), or the type itself.</summary>
    internal static (Type Value, bool Async) Unwrap(Type returnType)
    {
        if (returnType == typeof(Task) || returnType == typeof(ValueTask)) return (typeof(void), true);
        if (returnType.IsGenericType && (returnType.GetGenericTypeDefinition() == typeof(Task<>) || returnType.GetGenericTypeDefinition() == typeof(ValueTask<>)))
            return (returnType.GetGenericArguments()[0], true);
        return (returnType, false);
    }
}

/// <summary>
/// The host's end of service calls from one worker: the objects the worker may call (the services offered to its
/// environments, and interface-typed results such as sessions), by handle. A worker can name only handles it was given.
/// </summary>
internal sealed class ServiceHost(WorkerProcess worker) : IDisposable
{
    private readonly ConcurrentDictionary<int, (object Target, Type Interface)> _objects = new();

    /// <summary>Makes <paramref name="target"/> callable by the worker as <paramref name="type"/>; returns its handle.</summary>
    public int Offer(object target, Type type)
    {
        int handle = worker.NewHandle();
        _objects[handle] = (target, type);
        return handle;
    }

    /// <summary>Runs one call from the worker and sends the reply: [call id, ok, result JSON or error].</summary>
    public void Handle(int callId, ReadOnlyMemory<byte> payload) => _ = Task.Run(async () =>
    {
        string? result = null, error = null;
        try { result = await CallAsync(payload); }
        catch (Exception e)
        {
            var inner = e is TargetInvocationException { InnerException: { } i } ? i : e;
            error = $"{inner.GetType().Name}: {inner.Message}";
        }
        worker.SendFrame(0, (byte)Request.ServiceReply, (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(callId);
            w.Write(error == null);
            w.Write(error ?? result);
        });
    });

    private async Task<string?> CallAsync(ReadOnlyMemory<byte> payload)
    {
        var r = new MessagePackReader(payload);
        r.ReadArrayHeader();
        int handle = r.ReadInt32();
        string name = WorkerProtocol.Text(ref r);
        string argsJson = WorkerProtocol.Text(ref r);
        if (!_objects.TryGetValue(handle, out var obj)) throw new InvalidOperationException($"no service object #{handle} (closed, or never offered)");
        using var args = JsonDocument.Parse(argsJson);
        var items = args.RootElement.EnumerateArray().ToList();
        var method = WorkerServices.FindMethod(obj.Interface, name, items.Count + 1) is { } withToken && withToken.GetParameters()[^1].ParameterType == typeof(CancellationToken)
            ? withToken
            : WorkerServices.FindMethod(obj.Interface, name, items.Count) ?? throw new InvalidOperationException($"{obj.Interface.Name} has no method {name} with {items.Count} argument(s)");
        var parameters = method.GetParameters();
        var values = new object?[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
            values[i] = parameters[i].ParameterType == typeof(CancellationToken) ? CancellationToken.None
                : items[i].Deserialize(parameters[i].ParameterType, WorkerServices.Json);
        object? returned = method.Invoke(obj.Target, values);
        var (valueType, isAsync) = WorkerServices.Unwrap(method.ReturnType);
        object? value = returned;
        if (isAsync)
        {
            Task task = returned is Task t ? t : (Task)returned!.GetType().GetMethod("AsTask")!.Invoke(returned, null)!;
            await task;
            value = valueType == typeof(void) ? null : task.GetType().GetProperty("Result")!.GetValue(task);
        }
        if (name == nameof(IAsyncDisposable.DisposeAsync) && obj.Interface != typeof(IAsyncDisposable)) _objects.TryRemove(handle, out _);
        if (valueType == typeof(void)) return "null";
        if (valueType.IsInterface) return value == null ? "null" : JsonSerializer.Serialize(Offer(value, valueType));
        return JsonSerializer.Serialize(value, valueType, WorkerServices.Json);
    }

    /// <summary>Disposes what the worker left open (sessions) when the worker is gone.</summary>
    public void Dispose()
    {
        foreach (var (handle, obj) in _objects)
            if (_objects.TryRemove(handle, out _) && obj.Target is IAsyncDisposable d && !WorkerServices.Proxied.Contains(obj.Interface))
                _ = Task.Run(async () => { try { await d.DisposeAsync(); } catch { /* best effort: the worker is gone anyway */ } });
    }
}

/// <summary>The worker's end: proxies that turn each interface call into a call to the host.</summary>
internal sealed class ServiceClient(IFrameSink output)
{
    private readonly ConcurrentDictionary<int, TaskCompletionSource<string>> _waiting = new();
    private int _nextCall;

    /// <summary>The services offered to one environment: [interface name, handle] pairs.</summary>
    public IEnvironmentServices For(IReadOnlyList<string> offered)
    {
        var byType = new Dictionary<Type, object>();
        for (int i = 0; i + 1 < offered.Count; i += 2)
        {
            var type = WorkerServices.Proxied.FirstOrDefault(t => t.FullName == offered[i]);
            if (type != null) byType[type] = Proxy(type, int.Parse(offered[i + 1], System.Globalization.CultureInfo.InvariantCulture));
        }
        return new Plugins.HostServices(byType);
    }

    internal object Proxy(Type type, int handle)
    {
        var proxy = DispatchProxy.Create(type, typeof(RemoteObject));
        ((RemoteObject)proxy).Bind(this, type, handle);
        return proxy;
    }

    /// <summary>Sends a call and waits for the host's JSON answer.</summary>
    public Task<string> CallAsync(int handle, string method, string argsJson)
    {
        int id = Interlocked.Increment(ref _nextCall);
        var reply = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[id] = reply;
        output.Send(id, (byte)Reply.ServiceCall, (ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(3);
            w.Write(handle);
            w.Write(method);
            w.Write(argsJson);
        });
        return reply.Task;
    }

    /// <summary>A reply from the host: [call id, ok, result JSON or error].</summary>
    public void Complete(ReadOnlyMemory<byte> payload)
    {
        var r = new MessagePackReader(payload);
        r.ReadArrayHeader();
        int id = r.ReadInt32();
        bool ok = r.ReadBoolean();
        string text = WorkerProtocol.Text(ref r);
        if (!_waiting.TryRemove(id, out var waiting)) return;
        if (ok) waiting.TrySetResult(text);
        else waiting.TrySetException(new InvalidOperationException($"host service call failed: {text}"));
    }
}

/// <summary>One proxied interface: every method call becomes a host call by name with its arguments as JSON.</summary>
public class RemoteObject : DispatchProxy
{
    private ServiceClient _client = null!;
    private Type _interface = null!;
    private int _handle;

    internal void Bind(ServiceClient client, Type type, int handle) => (_client, _interface, _handle) = (client, type, handle);

    /// <inheritdoc />
    protected override object? Invoke(MethodInfo? method, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(method);
        var parameters = method.GetParameters();
        var sent = new List<object?>();
        var cancellation = CancellationToken.None;
        for (int i = 0; i < parameters.Length; i++)
            if (parameters[i].ParameterType != typeof(CancellationToken)) sent.Add(args![i]);
            else if (args![i] is CancellationToken token) cancellation = token;
        string json = JsonSerializer.Serialize(sent.ToArray(), WorkerServices.Json);
        var (valueType, isAsync) = WorkerServices.Unwrap(method.ReturnType);
        // The plugin's token ends its wait (the host's call runs on under the service's own limits): a plugin that
        // passes its token on stops when its call is cancelled, instead of waiting to be killed with its worker.
        var call = _client.CallAsync(_handle, method.Name, json).WaitAsync(cancellation);
        if (!isAsync)
        {
            // A synchronous member (a property such as Backend) waits for its answer.
            return Decode(call.GetAwaiter().GetResult(), valueType);
        }
        if (valueType == typeof(void))
            return method.ReturnType == typeof(ValueTask) ? new ValueTask(call) : call;
        var typed = typeof(RemoteObject).GetMethod(nameof(Typed), BindingFlags.NonPublic | BindingFlags.Instance)!.MakeGenericMethod(valueType).Invoke(this, [call])!;
        return method.ReturnType.GetGenericTypeDefinition() == typeof(ValueTask<>)
            ? Activator.CreateInstance(method.ReturnType, typed) : typed;
    }

    private async Task<T> Typed<T>(Task<string> call) => (T)Decode(await call, typeof(T))!;

    private object? Decode(string json, Type type)
    {
        if (type == typeof(void)) return null;
        if (type.IsInterface)
        {
            int? handle = JsonSerializer.Deserialize<int?>(json);
            return handle == null ? null : _client.Proxy(type, handle.Value);
        }
        return JsonSerializer.Deserialize(json, type, WorkerServices.Json);
    }
}
