import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  digestData,
  missingVariables,
  renderDigest,
  renderVariant,
  TemplateError,
  templateErrors,
  templateVariables,
  validateTemplate,
  type TemplateVariant,
} from '../../src/domain/templates.ts';

const v = (fields: Partial<TemplateVariant>): TemplateVariant => ({ locale: 'en', title: '', body: '', ...fields });

describe('validateTemplate', () => {
  it('accepts templates with variables, sections, comments and changed delimiters', () => {
    // Each valid template with the variables it uses: accepted, and read the way it is meant.
    const valid: [string, string[]][] = [
      ['plain', []],
      ['Hi {{name}}', ['name']],
      ['{{#items}}{{title}}{{/items}}', ['items', 'title']],
      ['{{^none}}x{{/none}}', ['none']],
      ['{{! note }}a', []],
      ['{{=<% %>=}}<% name %>', ['name']],
      ['{{{raw}}} {{&raw}}', ['raw']],
    ];
    for (const [ok, variables] of valid) {
      assert.doesNotThrow(() => validateTemplate(ok), ok);
      assert.deepEqual(templateErrors(v({ title: ok, body: ok }), 'body.variants[0]'), [], ok);
      assert.deepEqual(templateVariables(ok), variables, ok);
    }
  });

  it('refuses unclosed and unopened tags and sections with the position', () => {
    assert.throws(() => validateTemplate('Hi {{name'), (e: unknown) => e instanceof TemplateError && /invalid template: Unclosed tag at 9/.test(e.message));
    assert.throws(() => validateTemplate('{{#items}}x'), /invalid template: Unclosed section "items"/);
    assert.throws(() => validateTemplate('x{{/items}}'), /invalid template: Unopened section "items"/);
    assert.throws(() => validateTemplate('{{#a}}{{/b}}'), /invalid template: Unclosed section "a"/);
  });

  it('refuses partials and empty tags', () => {
    assert.throws(() => validateTemplate('Hello {{> header}}'), /partials are not supported \(\{\{> header\}\} at 6\)/);
    assert.throws(() => validateTemplate('{{#a}}{{>inner}}{{/a}}'), /partials are not supported/);
    assert.throws(() => validateTemplate('a {{ }} b'), /empty tag at 2/);
  });

  it('refuses what is not a string', () => {
    assert.throws(() => validateTemplate(42 as unknown as string), /must be a string/);
  });

  it('templateErrors gives one error per bad field, with its path', () => {
    assert.deepEqual(templateErrors(v({ title: 'ok {{x}}', body: '{{#a}}', html: '{{> p}}' }), 'body.variants[0]').map((e) => e.path), [
      'body.variants[0].body',
      'body.variants[0].html',
    ]);
    assert.deepEqual(templateErrors(v({ title: 'ok', subject: null }), 'p'), []);
  });
});

describe('templateVariables', () => {
  it('lists dotted names, section names and names inside sections, sorted, once each', () => {
    assert.deepEqual(templateVariables('{{user.name}} {{#items}}{{title}} {{user.name}}{{/items}}{{^vip}}{{{link}}}{{/vip}} {{&raw}} {{! c }}{{.}}'), [
      'items',
      'link',
      'raw',
      'title',
      'user.name',
      'vip',
    ]);
    assert.deepEqual(templateVariables('no tags'), []);
  });

  it('follows changed delimiters', () => {
    assert.deepEqual(templateVariables('{{=<% %>=}}<% a %> {{b}}'), ['a']);
  });

  it('throws for an unparsable template', () => {
    assert.throws(() => templateVariables('{{a'), TemplateError);
  });
});

describe('missingVariables', () => {
  const welcome = v({ title: 'Hi {{user.name}}', body: 'Order {{order.id}}: {{#items}}{{sku}} x{{qty}}; {{/items}}', subject: '{{subject}}' });

  it('lists the names that resolve to undefined, sorted', () => {
    assert.deepEqual(missingVariables(welcome, { user: { name: 'Ann' }, items: [] }), ['order.id', 'subject']);
    assert.deepEqual(missingVariables(welcome, {}), ['items', 'order.id', 'subject', 'user.name']);
    assert.deepEqual(missingVariables(welcome, undefined), ['items', 'order.id', 'subject', 'user.name']);
  });

  it('null, false, 0 and "" are present', () => {
    assert.deepEqual(missingVariables(v({ body: '{{a}}{{b}}{{c}}{{d}}' }), { a: null, b: false, c: 0, d: '' }), []);
  });

  it('a section over a list resolves its names against each item, falling back outward', () => {
    const t = v({ body: '{{#items}}{{sku}} {{currency}}{{/items}}' });
    assert.deepEqual(missingVariables(t, { items: [{ sku: 'a' }, { sku: 'b' }], currency: 'EUR' }), []);
    assert.deepEqual(missingVariables(t, { items: [{ sku: 'a', currency: 'EUR' }, { sku: 'b' }] }), ['currency']);
    assert.deepEqual(missingVariables(t, { items: [{ sku: 'a' }, {}], currency: 'EUR' }), ['sku']);
    // names used only inside the list are not required at the top level
    assert.deepEqual(missingVariables(t, { items: [] }), []);
  });

  it('a missing section reports only its own name; an object section resolves inside it', () => {
    const t = v({ body: '{{#order}}{{id}} {{total}}{{/order}}' });
    assert.deepEqual(missingVariables(t, {}), ['order']);
    assert.deepEqual(missingVariables(t, { order: { id: 1 } }), ['total']);
    assert.deepEqual(missingVariables(t, { order: false }), []);
  });

  it('inverted sections: the name is required; the contents are checked when they would render', () => {
    const t = v({ body: '{{^premium}}Upgrade at {{url}}{{/premium}}' });
    assert.deepEqual(missingVariables(t, { premium: true }), []);
    assert.deepEqual(missingVariables(t, { premium: false }), ['url']);
    assert.deepEqual(missingVariables(t, {}), ['premium', 'url']);
  });

  it('all fields of the variant are checked', () => {
    assert.deepEqual(missingVariables(v({ title: '{{a}}', body: '{{b}}', html: '{{c}}', subject: '{{d}}' }), {}), ['a', 'b', 'c', 'd']);
  });

  it('inherited properties are not data', () => {
    assert.deepEqual(missingVariables(v({ body: '{{constructor}} {{toString}} {{items.map}}' }), { items: [] }), ['constructor', 'items.map', 'toString']);
  });
});

describe('renderVariant', () => {
  const data = { name: '<Ann & "Bob">', n: 3 };
  const t = v({ title: 'Hi {{name}}', body: '{{name}} has {{n}}', html: '<p>{{name}}</p><p>{{{name}}}</p>', subject: 'For {{name}}' });

  it('plain-text fields are not escaped; html is, except in triple mustaches', () => {
    assert.deepEqual(renderVariant(t, data, { channel: 'email' }), {
      title: 'Hi <Ann & "Bob">',
      body: '<Ann & "Bob"> has 3',
      html: '<p>&lt;Ann &amp; &quot;Bob&quot;&gt;</p><p><Ann & "Bob"></p>',
      subject: 'For <Ann & "Bob">',
    });
  });

  it('html and subject only for email', () => {
    assert.deepEqual(renderVariant(t, data, { channel: 'sms' }), { title: 'Hi <Ann & "Bob">', body: '<Ann & "Bob"> has 3' });
    assert.deepEqual(renderVariant(t, data, { channel: null }), { title: 'Hi <Ann & "Bob">', body: '<Ann & "Bob"> has 3' });
  });

  it('sections over lists, objects and booleans; inverted sections', () => {
    const list = v({ title: '{{#vip}}VIP {{/vip}}{{^vip}}Member {{/vip}}{{user.name}}', body: '{{#items}}- {{title}} ({{currency}})\n{{/items}}{{^items}}nothing{{/items}}' });
    const out = renderVariant(list, { vip: true, user: { name: 'Ann' }, currency: 'EUR', items: [{ title: 'a' }, { title: 'b' }] }, { channel: 'sms' });
    assert.deepEqual(out, { title: 'VIP Ann', body: '- a (EUR)\n- b (EUR)\n' });
    assert.equal(renderVariant(list, { vip: false, user: { name: 'Bo' }, items: [] }, { channel: 'sms' }).body, 'nothing');
  });

  it('missing names render as empty', () => {
    assert.equal(renderVariant(v({ title: 'Hi {{name}}!' }), {}, { channel: null }).title, 'Hi !');
  });

  it('refuses partials even if the template was not validated first', () => {
    assert.throws(() => renderVariant(v({ body: 'x {{> secret}}' }), {}, { channel: null }), /partials are not supported/);
  });

  it('data must be JSON: functions (lambdas), class instances, getters and cycles are refused', () => {
    let called = false;
    const lambda = () => {
      called = true;
      return 'pwned';
    };
    const body = v({ body: '{{#f}}x{{/f}}{{g}}' });
    assert.throws(() => renderVariant(body, { f: lambda }, { channel: null }), /template data must be JSON: data\.f is a function/);
    assert.throws(() => renderVariant(body, { list: [1, lambda] }, { channel: null }), /data\.list\[1\] is a function/);
    assert.throws(() => renderVariant(body, { d: new Date(0) }, { channel: null }), /data\.d is a Date/);
    assert.throws(() => renderVariant(body, { x: 1n }, { channel: null }), /data\.x is a bigint/);
    assert.throws(
      () =>
        renderVariant(
          body,
          Object.defineProperty({}, 'g', {
            get() {
              called = true;
              return 1;
            },
            enumerable: true,
          }),
          { channel: null },
        ),
      /data\.g is a getter/,
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => renderVariant(body, cyclic, { channel: null }), /data\.self refers to itself/);
    assert.throws(() => missingVariables(body, { f: lambda }), TemplateError);
    assert.equal(called, false);
  });

  it('prototype properties are not reachable: nothing is called through them', () => {
    const probe = v({ body: '[{{constructor}}][{{#constructor.constructor}}x{{/constructor.constructor}}][{{items.map}}][{{name.toString}}][{{__proto__}}]' });
    assert.equal(renderVariant(probe, { items: [1], name: 'a' }, { channel: null }).body, '[][][][][]');
  });

  it('own properties of strings and arrays are reachable (length, indices)', () => {
    assert.equal(renderVariant(v({ body: '{{name.length}} {{items.length}} {{items.0}}' }), { name: 'Ann', items: ['x', 'y'] }, { channel: null }).body, '3 2 x');
  });

  it('nested sections resolve outward like Mustache', () => {
    const t2 = v({ body: '{{#orders}}{{#lines}}{{id}}/{{sku}} {{/lines}}{{/orders}}' });
    assert.equal(renderVariant(t2, { orders: [{ id: 1, lines: [{ sku: 'a' }, { sku: 'b' }] }, { id: 2, lines: [{ sku: 'c' }] }] }, { channel: null }).body, '1/a 1/b 2/c ');
    assert.deepEqual(missingVariables(t2, { orders: [{ id: 1, lines: [{ sku: 'a' }] }] }), []);
  });

  it('property: a text with no tags renders as itself, in every field', () => {
    const noTags = fc.string({ unit: 'grapheme', maxLength: 60 }).filter((s) => !s.includes('{{'));
    fc.assert(
      fc.property(noTags, fc.jsonValue(), (text, data) => {
        const out = renderVariant(v({ title: text, body: text, html: text, subject: text }), data, { channel: 'email' });
        assert.deepEqual(out, { title: text, body: text, html: text, subject: text });
        assert.deepEqual(templateVariables(text), []);
        assert.deepEqual(missingVariables(v({ body: text }), data), []);
      }),
    );
  });

  it('property: a variable renders its string value unchanged in text, escaped in html', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (value) => {
        const out = renderVariant(v({ body: '[{{x}}]', html: '[{{x}}]' }), { x: value }, { channel: 'email' });
        assert.equal(out.body, `[${value}]`);
        assert.equal(out.html!.includes('<') || out.html!.includes('>') || out.html!.includes('"'), false);
      }),
    );
  });

  it('property: missingVariables is empty exactly when every top-level name is given (flat templates)', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'd');
    fc.assert(
      fc.property(fc.array(name, { maxLength: 4 }), fc.uniqueArray(name), (used, given) => {
        const text = used.map((n) => `{{${n}}}`).join(' ');
        const data = Object.fromEntries(given.map((n) => [n, 'x']));
        assert.deepEqual(missingVariables(v({ body: text }), data), [...new Set(used.filter((n) => !given.includes(n)))].sort());
      }),
    );
  });
});

describe('renderDigest', () => {
  const digest = v({
    title: '{{count}} new notifications',
    body: '{{#items}}* {{title}}: {{body}} ({{data.order}})\n{{/items}}',
    html: '<ul>{{#items}}<li>{{title}}</li>{{/items}}</ul>',
  });
  const items = [
    { title: 'Shipped', body: 'Your order <1> shipped', data: { order: 'A1' } },
    { title: 'R&D', body: 'Delivered', data: { order: 'B2' } },
  ];

  it('exposes count and items {title, body, data}', () => {
    assert.deepEqual(renderDigest(digest, items, 5, { channel: 'email' }), {
      title: '5 new notifications',
      body: '* Shipped: Your order <1> shipped (A1)\n* R&D: Delivered (B2)\n',
      html: '<ul><li>Shipped</li><li>R&amp;D</li></ul>',
    });
  });

  it('count may exceed the items shown; missing variables are checked against digestData', () => {
    assert.equal(renderDigest(digest, items.slice(0, 1), 12).title, '12 new notifications');
    assert.deepEqual(missingVariables(digest, digestData([{ title: 't', body: null, data: {} }], 1)), ['data.order']);
  });
});
