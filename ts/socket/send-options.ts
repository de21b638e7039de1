// SPDX-License-Identifier: MIT
/** Per-socket send options: defaults, and a memo of the last resolved input. */
import {
  DEFAULT_SEND_OPTIONS,
  parseSendOptions,
  resolveSendOptions,
  type SendOptions,
  type SendOptionsInput,
} from '../config.ts';

/**
 * A socket's default send options plus a one-entry memo: callers usually
 * pass the same options object on every send, so the resolved options are
 * reused while that object's fields are unchanged.
 */
export class SendOptionsMemo {
  #defaults: SendOptions;
  #in: SendOptionsInput | undefined;
  #snap: unknown[] = [];
  #out: SendOptions = DEFAULT_SEND_OPTIONS;

  constructor(defaults: SendOptions) {
    this.#defaults = defaults;
  }

  get defaults(): Readonly<SendOptions> {
    return this.#defaults;
  }

  /** Replace the defaults (validated; throws ZcConfigError). */
  setDefaults(options: SendOptionsInput): void {
    this.#defaults = parseSendOptions(options);
    this.#in = undefined;
  }

  /** The options of one send: the defaults overridden by `options`. */
  resolve(options: SendOptionsInput | undefined): SendOptions {
    if (options === undefined) return this.#defaults;
    if (options === null || typeof options !== 'object') return parseSendOptions(options); // throws ZcConfigError
    const snap = this.#snap;
    if (
      options === this.#in &&
      snap[0] === options.mode &&
      snap[1] === options.autoThreshold &&
      snap[7] === options.autoThresholdUnregistered &&
      snap[2] === options.more &&
      snap[3] === options.reportUsage &&
      snap[4] === options.offset &&
      snap[5] === options.length &&
      snap[6] === options.coalesce &&
      this.#out !== DEFAULT_SEND_OPTIONS
    ) {
      return this.#out;
    }
    const o = resolveSendOptions(options, this.#defaults);
    this.#in = options;
    this.#snap = [
      options.mode, options.autoThreshold, options.more, options.reportUsage, options.offset, options.length, options.coalesce,
      options.autoThresholdUnregistered,
    ];
    this.#out = o;
    return o;
  }
}
