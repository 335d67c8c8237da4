import { type KeyboardEvent, type ReactNode, useRef } from "react";

interface TabbedPanelProps<T extends string> {
  /** Names the panel and its tab list for screen readers. */
  readonly label: string;
  readonly tabs: readonly T[];
  readonly labels: Readonly<Record<T, string>>;
  readonly tab: T;
  readonly onTab: (tab: T) => void;
  /** Prefix of the tabs' and panels' ids and test ids ("" or "spot-"). */
  readonly idPrefix: string;
  /** The body of the selected tab. */
  readonly children: ReactNode;
}

/** A panel of keyboard-navigable tabs (arrow keys move between them), showing one body. */
export function TabbedPanel<T extends string>({
  label,
  tabs,
  labels,
  tab,
  onTab,
  idPrefix,
  children,
}: TabbedPanelProps<T>) {
  const tabRefs = useRef(new Map<T, HTMLButtonElement>());
  const onKeyDown = (event: KeyboardEvent) => {
    const offset = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (offset === 0) return;
    event.preventDefault();
    const next = tabs[(tabs.indexOf(tab) + offset + tabs.length) % tabs.length];
    if (next === undefined) return;
    onTab(next);
    tabRefs.current.get(next)?.focus();
  };
  return (
    <section className="bottom panel" aria-label={label}>
      <div className="tabs" role="tablist" aria-label={label} onKeyDown={onKeyDown}>
        {tabs.map((name) => (
          <button
            key={name}
            ref={(element) => {
              if (element === null) tabRefs.current.delete(name);
              else tabRefs.current.set(name, element);
            }}
            type="button"
            role="tab"
            id={`${idPrefix}tab-${name}`}
            aria-selected={tab === name}
            aria-controls={`${idPrefix}tabpanel-${name}`}
            tabIndex={tab === name ? 0 : -1}
            className={tab === name ? "active" : ""}
            onClick={() => onTab(name)}
            data-testid={`${idPrefix}tab-${name}`}
          >
            {labels[name]}
          </button>
        ))}
      </div>
      <div
        className="tab-body"
        role="tabpanel"
        id={`${idPrefix}tabpanel-${tab}`}
        aria-labelledby={`${idPrefix}tab-${tab}`}
      >
        {children}
      </div>
    </section>
  );
}
