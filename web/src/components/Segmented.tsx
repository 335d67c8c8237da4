import type { ReactNode } from "react";

export interface SegmentOption<T extends string> {
  readonly value: T;
  readonly label: ReactNode;
  readonly testId: string;
  readonly title?: string;
  readonly disabled?: boolean;
}

interface SegmentedProps<T extends string> {
  /** Names the group for screen readers ("Order type", "Size in"). */
  readonly label: string;
  readonly options: readonly SegmentOption<T>[];
  readonly value: T;
  readonly onChange: (value: T) => void;
  /** A small group, set inside a field's label row. */
  readonly mini?: boolean;
}

/** A row of toggle buttons of which exactly one is pressed. */
export function Segmented<T extends string>({ label, options, value, onChange, mini = false }: SegmentedProps<T>) {
  return (
    <div className={mini ? "segmented mini" : "segmented"} role="group" aria-label={label}>
      {options.map((option) => (
        <button
          key={option.value}
          type="button"
          className={value === option.value ? "active" : ""}
          aria-pressed={value === option.value}
          disabled={option.disabled}
          title={option.title}
          onClick={() => onChange(option.value)}
          data-testid={option.testId}
        >
          {option.label}
        </button>
      ))}
    </div>
  );
}
