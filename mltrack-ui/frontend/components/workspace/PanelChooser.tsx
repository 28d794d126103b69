"use client";

// Which metric panels the grid shows, and in what order.

interface Props {
  all: string[];
  shown: string[];
  onChange: (shown: string[]) => void;
}

export function PanelChooser({ all, shown, onChange }: Props) {
  const hidden = all.filter((k) => !shown.includes(k));
  const move = (i: number, by: number) => {
    const next = [...shown];
    const [item] = next.splice(i, 1);
    next.splice(i + by, 0, item as string);
    onChange(next);
  };
  return (
    <div className="card ws-chooser" data-testid="panel-chooser">
      <h4>Shown panels</h4>
      <ol>
        {shown.map((key, i) => (
          <li key={key}>
            <span title={key}>{key}</span>
            <button type="button" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`move ${key} up`}>
              ↑
            </button>
            <button type="button" disabled={i === shown.length - 1} onClick={() => move(i, 1)} aria-label={`move ${key} down`}>
              ↓
            </button>
            <button type="button" onClick={() => onChange(shown.filter((k) => k !== key))} aria-label={`hide ${key}`}>
              hide
            </button>
          </li>
        ))}
      </ol>
      {hidden.length > 0 && (
        <>
          <h4>Hidden</h4>
          <div className="ws-hidden">
            {hidden.map((key) => (
              <button type="button" key={key} onClick={() => onChange([...shown, key])} aria-label={`show ${key}`}>
                + {key}
              </button>
            ))}
          </div>
        </>
      )}
      <button type="button" onClick={() => onChange(all)}>
        show all
      </button>
    </div>
  );
}
