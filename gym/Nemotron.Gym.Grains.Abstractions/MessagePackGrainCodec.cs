using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using MessagePack;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Cloning;
using Orleans.Serialization.Codecs;
using Orleans.Serialization.Serializers;
using Orleans.Serialization.WireProtocol;

namespace Nemotron.Gym.Grains;

/// <summary>
/// Carries [MessagePackObject] types and the conversation contract (<see cref="ConversationFormatters"/>) through
/// Orleans as MessagePack bytes. A field holds two sub-fields: the runtime type (Orleans' type codec) and the MessagePack
/// payload (length-prefixed). Orleans' own MessagePack package is not on our registry, hence this one.
/// </summary>
[Alias("nemotron-msgpack")]
public sealed class MessagePackGrainCodec : IGeneralizedCodec, IGeneralizedCopier, ITypeFilter
{
    private static readonly ConcurrentDictionary<Type, bool> Contracts = new();
    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard
        .WithResolver(ConversationFormatters.Resolver).WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>True for types marked [MessagePackObject] and the conversation contract's types.</summary>
    public static bool IsContract(Type type) => Contracts.GetOrAdd(type, t =>
        t.GetCustomAttribute<MessagePackObjectAttribute>() != null || ConversationFormatters.Types.Contains(t));

    bool IGeneralizedCodec.IsSupportedType(Type type) => type == typeof(MessagePackGrainCodec) || IsContract(type);
    bool IGeneralizedCopier.IsSupportedType(Type type) => IsContract(type);
    bool? ITypeFilter.IsTypeAllowed(Type type) => IsContract(type) ? true : null;

    void IFieldCodec.WriteField<TBufferWriter>(ref Writer<TBufferWriter> writer, uint fieldIdDelta, Type? expectedType, object? value)
    {
        if (ReferenceCodec.TryWriteReferenceField(ref writer, fieldIdDelta, expectedType, value)) return;
        writer.WriteFieldHeader(fieldIdDelta, expectedType, typeof(MessagePackGrainCodec), WireType.TagDelimited);
        var type = value!.GetType(); // null was written as a reference above
        ReferenceCodec.MarkValueField(writer.Session);
        writer.WriteFieldHeaderExpected(0, WireType.LengthPrefixed);
        writer.Session.TypeCodec.WriteLengthPrefixed(ref writer, type);
        byte[] payload = MessagePackSerializer.Serialize(type, value, Options);
        ReferenceCodec.MarkValueField(writer.Session);
        writer.WriteFieldHeaderExpected(1, WireType.LengthPrefixed);
        writer.WriteVarUInt32((uint)payload.Length);
        writer.Write(payload);
        writer.WriteEndObject();
    }

    object IFieldCodec.ReadValue<TInput>(ref Reader<TInput> reader, Field field)
    {
        if (field.IsReference) return ReferenceCodec.ReadReference(ref reader, field.FieldType)!;
        field.EnsureWireTypeTagDelimited();
        uint placeholder = ReferenceCodec.CreateRecordPlaceholder(reader.Session);
        Type? type = null;
        object? value = null;
        uint id = 0;
        for (var header = reader.ReadFieldHeader(); !header.IsEndBaseOrEndObject; header = reader.ReadFieldHeader())
        {
            id += header.FieldIdDelta;
            if (id == 0)
            {
                ReferenceCodec.MarkValueField(reader.Session);
                type = reader.Session.TypeCodec.ReadLengthPrefixed(ref reader);
            }
            else if (id == 1)
            {
                if (type == null || !IsContract(type)) throw new RequiredFieldMissingException($"MessagePack field without an allowed type ({type?.FullName ?? "none"})");
                ReferenceCodec.MarkValueField(reader.Session);
                int length = (int)reader.ReadVarUInt32();
                value = MessagePackSerializer.Deserialize(type, reader.ReadBytes((uint)length), Options);
            }
            else reader.ConsumeUnknownField(header);
        }
        ReferenceCodec.RecordObject(reader.Session, value, placeholder);
        return value!;
    }

    // The contracts are immutable records, but copy anyway so no activation shares an instance with another.
    object? IDeepCopier.DeepCopy(object? input, CopyContext context)
    {
        if (input == null) return null;
        if (context.TryGetCopy(input, out object? existing)) return existing!;
        var type = input.GetType();
        var copy = MessagePackSerializer.Deserialize(type, MessagePackSerializer.Serialize(type, input, Options), Options)!;
        context.RecordCopy(input, copy);
        return copy;
    }

    /// <summary>Registers the codec with an Orleans serializer.</summary>
    public static ISerializerBuilder AddTo(ISerializerBuilder builder)
    {
        var services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(MessagePackGrainCodec))) return builder;
        services.AddSingleton<MessagePackGrainCodec>();
        services.AddSingleton<IGeneralizedCodec>(sp => sp.GetRequiredService<MessagePackGrainCodec>());
        services.AddSingleton<IGeneralizedCopier>(sp => sp.GetRequiredService<MessagePackGrainCodec>());
        services.AddSingleton<ITypeFilter>(sp => sp.GetRequiredService<MessagePackGrainCodec>());
        builder.Configure(o => o.WellKnownTypeAliases["nemotron-msgpack"] = typeof(MessagePackGrainCodec));
        return builder;
    }
}
