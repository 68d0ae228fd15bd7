// A tracer that keeps the spans it starts, for the package's tests (not published). Outside
// test/, so that Node's test runner does not take it for a test file.

/** Keeps every span it starts; `failing` makes `startSpan` throw, as a broken tracer would. */
export class FakeTracer {
  constructor({ failing = false } = {}) {
    this.spans = [];
    this.failing = failing;
  }

  startSpan(name, options = {}) {
    if (this.failing) throw new Error('tracer is broken');
    const span = {
      name,
      kind: options.kind,
      attributes: { ...options.attributes },
      status: undefined,
      ended: false,
      setAttribute(key, value) {
        this.attributes[key] = value;
      },
      setAttributes(attributes) {
        Object.assign(this.attributes, attributes);
      },
      setStatus(status) {
        this.status = status;
      },
      end() {
        this.ended = true;
      },
    };
    this.spans.push(span);
    return span;
  }
}

/** A tracer provider whose every tracer is `tracer`. */
export const provider = (tracer) => ({ getTracer: () => tracer });
