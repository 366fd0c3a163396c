using Nemotron.Gym.Conversation;
using Nemotron.Gym.Environments.Shared;

namespace Nemotron.Gym.Environments.Arithmetic;

/// <summary>
/// One problem of the demo task: the sum or difference of two whole numbers of 1..3 digits
/// (differences are never negative). Asked in several phrasings, operands in digits or in words;
/// answered with a column-method working (units first, carries and borrows spelled out) as the
/// reasoning and the result in digits as the answer.
/// </summary>
public sealed record ArithmeticProblem(int A, char Op, int B)
{
    /// <summary>The exact answer.</summary>
    public int Answer => Op == '+' ? A + B : A - B;

    /// <summary>A stable key for the train/held-out split.</summary>
    public string Key => $"{A}{Op}{B}";

    /// <summary>
    /// One problem in ten is held out of every training corpus (decided by a hash of the problem, so the
    /// split is the same for every seed and every generator).
    /// </summary>
    public bool IsHeldOut
    {
        get
        {
            uint h = 2166136261;
            foreach (char ch in Key) h = (h ^ ch) * 16777619;
            return h % 10 == 0;
        }
    }

    /// <summary>A random problem whose operands have up to <paramref name="maxDigits"/> digits.</summary>
    public static ArithmeticProblem Sample(Random rng, int maxDigits = 3)
    {
        int Operand()
        {
            int digits = rng.Next(1, maxDigits + 1);
            int lo = digits == 1 ? 0 : (int)Math.Pow(10, digits - 1);
            return rng.Next(lo, (int)Math.Pow(10, digits));
        }
        int a = Operand(), b = Operand();
        char op = rng.Next(2) == 0 ? '+' : '-';
        if (op == '-' && a < b) (a, b) = (b, a);
        return new ArithmeticProblem(a, op, b);
    }

    /// <summary>A random problem from one side of the split.</summary>
    public static ArithmeticProblem SampleFromSplit(Random rng, bool heldOut, int maxDigits = 3)
    {
        while (true)
        {
            var p = Sample(rng, maxDigits);
            if (p.IsHeldOut == heldOut) return p;
        }
    }

    /// <summary>The question, in one of several phrasings chosen by <paramref name="rng"/>.</summary>
    public string Question(Random rng)
    {
        bool wordsA = rng.NextDouble() < 0.25, wordsB = rng.NextDouble() < 0.25;
        string a = wordsA ? NumberWords.ToWords(A) : A.ToString(), b = wordsB ? NumberWords.ToWords(B) : B.ToString();
        string sym = Op == '+' ? "+" : "-", word = Op == '+' ? "plus" : "minus";
        int form = rng.Next(5);
        return form switch
        {
            0 => $"What is {a} {sym} {b}?",
            1 => $"Compute {a} {sym} {b}.",
            2 => $"What is {a} {word} {b}?",
            3 => Op == '+' ? $"Add {a} and {b}." : $"Subtract {b} from {a}.",
            _ => $"Calculate {a} {word} {b}.",
        };
    }

    /// <summary>The column-method working, units first, ending with the result.</summary>
    public string Reasoning() => ColumnWorking.Of(A, Op, B);

    /// <summary>The chat example: user question, assistant reasoning and answer.</summary>
    public ChatTranscript ToConversation(Random rng) =>
        new([Message.User(Question(rng)), Message.Assistant(Answer.ToString(), Reasoning())]);

    /// <summary>A plain-text document for pretraining, in one of a few styles.</summary>
    public string ToDocument(Random rng) => rng.Next(4) switch
    {
        0 => $"Q: {Question(rng)}\nWorking: {Reasoning()}\nA: {Answer}",
        1 => $"{A} {Op} {B} = {Answer}",
        2 => $"{NumberWords.ToWords(A)} is {A}. {NumberWords.ToWords(B)} is {B}. {NumberWords.ToWords(Answer)} is {Answer}.",
        _ => $"{Question(rng)} {Reasoning()} The answer is {Answer}.",
    };

    /// <summary>True when the model's final answer text is exactly the result.</summary>
    public bool IsCorrect(string answerText) => answerText.Trim() == Answer.ToString();
}
