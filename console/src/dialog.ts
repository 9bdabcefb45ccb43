/**
 * Modal dialogs on the native <dialog> element: the browser keeps focus inside while it is open, Escape cancels
 * (resolves undefined), Enter in a field submits the primary action, and focus returns to where it was.
 */
import { type Child, h } from './dom.js';

export interface DialogAction {
  readonly label: string;
  readonly value: string;
  readonly primary?: boolean;
  readonly danger?: boolean;
}

export interface DialogSpec {
  readonly title: string;
  readonly body: readonly Child[];
  readonly actions: readonly DialogAction[];
  /** Checks the form before a non-cancel action closes it; a returned string is shown and keeps it open. */
  readonly validate?: (value: string) => string | undefined;
}

let serial = 0;

export function openDialog(spec: DialogSpec): Promise<string | undefined> {
  const id = `dlg-${++serial}`;
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const buttons = spec.actions.map((a) =>
    h(
      'button',
      {
        type: a.primary ? 'submit' : 'button',
        value: a.value,
        class: [a.primary ? 'primary' : '', a.danger ? 'danger' : ''].join(' ').trim() || undefined,
      },
      a.label,
    ),
  );
  const cancel = h('button', { type: 'button', value: '' }, 'Cancel');
  const form = h(
    'form',
    { novalidate: true },
    h('h2', { id: `${id}-title` }, spec.title),
    ...spec.body,
    error,
    h('div', { class: 'actions' }, cancel, ...buttons),
  );
  const dialog = h('dialog', { 'aria-labelledby': `${id}-title` }, form);
  const before = document.activeElement as HTMLElement | null;
  document.body.append(dialog);
  return new Promise((resolve) => {
    let done = false;
    const finish = (value: string | undefined) => {
      if (done) return;
      if (value !== undefined && spec.validate) {
        const problem = spec.validate(value);
        if (problem !== undefined) {
          error.textContent = problem;
          error.hidden = false;
          return;
        }
      }
      done = true;
      dialog.close();
      dialog.remove();
      before?.focus();
      resolve(value);
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const submitter = (ev as SubmitEvent).submitter as HTMLButtonElement | null;
      finish(submitter?.value ?? spec.actions.find((a) => a.primary)?.value);
    });
    for (const b of buttons) if (b.type === 'button') b.addEventListener('click', () => finish(b.value));
    cancel.addEventListener('click', () => finish(undefined));
    dialog.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      finish(undefined);
    });
    dialog.showModal();
    const first = form.querySelector<HTMLElement>('input, select, textarea') ?? buttons.find((b) => b.type === 'submit') ?? cancel;
    first.focus();
  });
}

/** A labelled field: the label wraps the control, so it is named for assistive technology. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), control, hint ? h('span', { class: 'hint' }, hint) : undefined);
}
